"""The same seed gives bit-identical losses, gradients and checkpoints, in any process."""

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np

TRAINING = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    import tinygrad_seq as ts
    from tinygrad_seq import nn, optim
    from tinygrad_seq import functional as F

    def run(seed, path):
        ts.manual_seed(seed)                       # initialisers and dropout masks
        rng = np.random.default_rng(seed)          # data
        embed = nn.Embedding(7, 5)
        model = nn.LSTM(5, 8, num_layers=2, dropout=0.3)
        head = nn.Linear(8, 7)
        params = [*embed.parameters(), *model.parameters(), *head.parameters()]
        opt = optim.Adam(params, lr=1e-2)
        losses = []
        for _ in range(5):
            tokens = rng.integers(0, 7, (6, 3))
            out, _ = model(embed(tokens[:-1]))
            loss = F.cross_entropy(head(out), tokens[1:])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(loss.item())
        grads = np.concatenate([p.grad.data.ravel() for p in params])
        ts.save({"model": model.state_dict(), "optim": opt.state_dict(), "losses": losses}, path)
        with open(path, "rb") as f:
            checkpoint = f.read()
        digest = hashlib.sha256(np.asarray(losses).tobytes() + grads.tobytes()).hexdigest()
        return digest, hashlib.sha256(checkpoint).hexdigest()

    if __name__ == "__main__":
        print(*run(int(sys.argv[1]), sys.argv[2]))
    """
)


def run_in_process(tmp_path, seed, hash_seed):
    script = tmp_path / "train.py"
    script.write_text(TRAINING)
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    result = subprocess.run(
        [sys.executable, str(script), str(seed), str(tmp_path / f"ckpt-{hash_seed}.npz")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return result.stdout.split()


def test_same_seed_gives_identical_numbers_and_checkpoint_bytes_across_processes(tmp_path):
    first = run_in_process(tmp_path, seed=3, hash_seed=1)
    second = run_in_process(tmp_path, seed=3, hash_seed=12345)  # another set/dict hashing
    assert first == second
    other_seed = run_in_process(tmp_path, seed=4, hash_seed=1)
    assert other_seed[0] != first[0]


def test_same_seed_gives_identical_runs_in_one_process(tmp_path):
    namespace: dict = {"__name__": "training"}
    exec(TRAINING, namespace)
    a = namespace["run"](11, str(tmp_path / "a.npz"))
    b = namespace["run"](11, str(tmp_path / "b.npz"))
    assert a == b
    assert hashlib.sha256((tmp_path / "a.npz").read_bytes()).hexdigest() == a[1]
    assert np.array_equal(
        np.frombuffer((tmp_path / "a.npz").read_bytes(), np.uint8),
        np.frombuffer((tmp_path / "b.npz").read_bytes(), np.uint8),
    )
