import asyncio

from services.identity.main import app

asyncio.run(app().run())
