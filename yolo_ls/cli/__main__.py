"""``python -m yolo_ls.cli ...``: the ``yolo-ls`` command."""

from yolo_ls.cli.main import main

if __name__ == "__main__":
    main()
