# Same program as asyncio.py in this folder (aiohttp), on uvloop's event loop.
# Run with `python3 -P` so this file's name does not shadow the uvloop module.
import os, runpy, uvloop

uvloop.install()
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "asyncio.py"), run_name="__main__")
