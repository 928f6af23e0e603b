from libs.runtime import serve
from services.messaging.main import app

serve(app)
