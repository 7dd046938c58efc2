"""`python -m orchestration.prs`: run an entry script locally like ParallelRunStep."""

if __name__ == "__main__":
    from orchestration.cli import launch

    launch("orchestration.prs.cli")
