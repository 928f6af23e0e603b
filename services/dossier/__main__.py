import asyncio

from services.dossier.main import app

asyncio.run(app().run())
