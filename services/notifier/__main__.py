import asyncio

from services.notifier.main import app

asyncio.run(app().run())
