import asyncio

from services.access.main import app

asyncio.run(app().run())
