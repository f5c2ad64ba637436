# Same program as asyncpg.py in this folder, on uvloop's event loop (Debian
# python3-uvloop): the asyncpguv peer.
# Run with `python3 -P` so this file's folder does not shadow the modules.
import os, runpy, uvloop

uvloop.install()
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "asyncpg.py"),
               init_globals={"PEER": "asyncpguv"}, run_name="__main__")
