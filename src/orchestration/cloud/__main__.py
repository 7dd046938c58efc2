"""`python -m orchestration.cloud provision|upload|publish|run|logs|registry`: the Azure side."""

if __name__ == "__main__":
    from orchestration.cli import launch

    launch("orchestration.cloud.cli")
