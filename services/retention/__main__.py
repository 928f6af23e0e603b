import asyncio

from services.retention.main import app

asyncio.run(app().run())
