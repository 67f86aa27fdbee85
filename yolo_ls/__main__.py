"""``python -m yolo_ls ...``: the ``yolo-ls`` command, for environments where the console script is not on PATH."""

from yolo_ls.cli.main import main

if __name__ == "__main__":
    main()
