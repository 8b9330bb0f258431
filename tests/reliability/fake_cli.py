"""``python -m tests.reliability.fake_cli sweep ...``: the real CLI with the test-only ``fake`` engine added."""

from tests.reliability.fake_engine import register

register()

if __name__ == "__main__":
    from speedbench.cli import main

    main()
