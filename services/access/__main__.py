from libs.runtime import serve
from services.access.main import app

serve(app)
