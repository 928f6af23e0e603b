from libs.runtime import serve
from services.retention.main import app

serve(app)
