"""`python -m orchestration.prs`: run an entry script locally like ParallelRunStep."""
from orchestration.cli import run_command
from orchestration.prs.cli import main

if __name__ == "__main__":
    run_command(main)
