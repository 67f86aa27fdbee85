"""Print the hostile-input table (tests/test_hostile_inputs.py) as Markdown: ``python -m tests.hostile_table``.

Paste the output between docs/robustness.md's ``<!-- hostile-table -->`` markers; a test keeps the two identical
(``python -m tests.readme_numbers --no-demo --write`` does it).
"""

from tests.test_hostile_inputs import markdown_table

if __name__ == "__main__":
    print(markdown_table())
