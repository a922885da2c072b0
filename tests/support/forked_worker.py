"""A fork server for the worker kill test: ``python tests/support/forked_worker.py`` (settings
from the environment, like ``triage worker``).

Importing spaCy and presidio and building the preprocessor takes 10 to 20 seconds on two busy
cores; ten restarts of ``triage worker`` would spend minutes on that alone. This process does it
once, then forks a fresh worker process on each ``start`` line read from stdin and prints its
pid. The child builds its own database engine after the fork, runs ``Worker.run_forever`` as
``triage worker`` does, and is SIGKILLed by the test like any process; ``reap PID`` prints its
exit status. End of input ends the server and any child still running.
"""

from __future__ import annotations

import logging
import os
import signal
import sys


def main() -> None:
    from triage.config import Settings
    from triage.pipeline import Pipeline
    from triage.preprocess import Preprocessor
    from triage.worker import Worker

    # Built before forking; no database connection exists yet, so none is shared with a child.
    preprocessor = Preprocessor.from_settings(Settings())
    children: set[int] = set()
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "start":
            pid = os.fork()
            if pid == 0:
                sys.stdin.close()
                logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
                settings = Settings()
                worker = Worker(settings, pipeline=Pipeline(settings, preprocessor=preprocessor))
                try:
                    worker.run_forever()
                finally:
                    os._exit(0)
            children.add(pid)
            print(pid, flush=True)
        elif command == "reap":
            pid = int(argument)
            _, status = os.waitpid(pid, 0)
            children.discard(pid)
            print(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status),
                  flush=True)  # fmt: skip
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
