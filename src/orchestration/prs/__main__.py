"""`python -m orchestration.prs`: run an entry script locally like ParallelRunStep."""

if __name__ == "__main__":
    import sys

    from orchestration.prs import warm

    warm.start(sys.argv[1:])  # first: the workers' start-up overlaps this process's imports
    from orchestration.cli import launch

    launch("orchestration.prs.cli")
