"""S0 for asyncio (or uvloop, given "uvloop"): one loop turn, then hello."""
import asyncio
import sys


async def main():
    await asyncio.sleep(0)
    print("hello")


if sys.argv[1:] == ["uvloop"]:
    import uvloop
    uvloop.install()
asyncio.run(main())
