"""N RemoteEnv stream sessions on one server, each stepping in its own thread.

    python stream_clients.py ADDRESS N [--idle]

Prints ``open N`` once every session is open, then (unless ``--idle``) steps them all
until stdin closes, and prints ``steps c1 c2 ...``: each session's step count. With
``--idle`` the sessions open and then do nothing (a client that pauses or is stopped).
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from flare.bridge import RemoteEnv


def main() -> None:
    address, count = sys.argv[1], int(sys.argv[2])
    idle = "--idle" in sys.argv
    # (a Session stream each: the streams are what these tests hold and free)
    envs = [RemoteEnv(address, seed=i, timeout_s=60, batch=False) for i in range(count)]
    stop = threading.Event()
    steps = [0] * count

    def play(index: int) -> None:
        env = envs[index]
        env.reset()
        while not stop.is_set():
            _, _, game_over = env.step({"action": np.array([index % 2])})
            steps[index] += 1
            if game_over or env.time_out():
                env.reset()

    threads = [threading.Thread(target=play, args=(i,), daemon=True) for i in range(count)]
    print(f"open {count}", flush=True)
    if not idle:
        for thread in threads:
            thread.start()
    sys.stdin.read()  # until the test closes our stdin
    stop.set()
    for thread in threads if not idle else ():
        thread.join(timeout=30)
    print("steps " + " ".join(map(str, steps)), flush=True)
    for env in envs:
        env.close()


if __name__ == "__main__":
    main()
