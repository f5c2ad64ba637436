# Same program as client_asyncio.py in this folder (aiohttp), on uvloop's
# event loop. Run with `python3 -P` so that no file name shadows a module.
import os, runpy, uvloop

uvloop.install()
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "client_asyncio.py"), run_name="__main__")
