import asyncio

from services.messaging.main import app

asyncio.run(app().run())
