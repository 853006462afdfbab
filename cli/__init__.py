"""The application shell: the `golive` command, the demo, the local Prefect stack and the
prefect.yaml editor. The top floor: it may import every package, and none imports it."""
