"""Print the hostile-input table (tests/test_hostile_inputs.py) as Markdown: ``python -m tests.hostile_table``.

Paste the output between README.md's ``<!-- hostile-table -->`` markers; a test keeps the two identical.
"""

from tests.test_hostile_inputs import markdown_table

if __name__ == "__main__":
    print(markdown_table())
