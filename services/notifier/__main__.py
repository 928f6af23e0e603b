from libs.runtime import serve
from services.notifier.main import app

serve(app)
