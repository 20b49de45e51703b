"""Entry point: `python app.py` runs the bot exactly as `pcp serve` does."""

from bot.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["serve"]))
