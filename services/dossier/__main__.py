from libs.runtime import serve
from services.dossier.main import app

serve(app)
