"""TensorFlow's unsilenceable import notices are filtered; everything else on stderr stays."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from pipeline.tf_noise import NOISE


def _stderr(code: str) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("LOTTERY_TF_NOISE", None)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def test_importing_tensorflow_through_the_package_prints_none_of_the_notices():
    assert NOISE.search(_stderr("import tensorflow")), "TensorFlow no longer prints them"
    assert not NOISE.search(_stderr("import pipeline\nimport tensorflow\nimport keras"))


def test_other_lines_written_meanwhile_come_back_in_order():
    err = _stderr("""
        import os
        from pipeline.tf_noise import filtered_stderr

        def noisy():
            os.write(2, b"real error 1\\n")
            os.write(2, b"E0000 cuda_dnn.cc:8579] Unable to register cuDNN factory: "
                        b"Attempting to register factory for plugin cuDNN when one has\\n")
            os.write(2, b"real error 2\\n")
            return 7

        assert filtered_stderr(noisy) == 7
        os.write(2, b"after\\n")
    """)
    assert err.splitlines() == ["real error 1", "real error 2", "after"]
