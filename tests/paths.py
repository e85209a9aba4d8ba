"""Where the repository and the shared test vectors are, for tests at any depth."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
SIPP_SCENARIOS = ROOT / "sip_profiles" / "sipp"
