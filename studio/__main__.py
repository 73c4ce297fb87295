from studio.cli import run

run()
