from libs.runtime import serve
from services.identity.main import app

serve(app)
