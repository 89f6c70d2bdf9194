"""PyTorch twin of the throughput benchmark: the same three models in a hand-written loop.

Run by ``benchmarks/train_throughput.py`` in its own process (TensorFlow and torch never share
one, so neither's thread pools disturb the other). Same architecture, batch, Adam and timing
protocol: untimed warm-up steps, then ``--repeats`` rounds of ``--steps`` timed steps on
in-memory batches; the median images per second is printed as one JSON line per paradigm.

    python benchmarks/torch_twin.py --paradigms simclr --steps 20 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

PARADIGMS = ("autoencoder", "classifier", "simclr")
LATENT_DIM, NUM_CLASSES, TEMPERATURE, LEARNING_RATE = 128, 10, 0.5, 1e-3
IN_MEMORY_BATCHES = 8


def encoder():
    stages, channels = [], 3
    for out in (32, 64, 128):
        # padding=1 with stride 2 gives Keras' "same" output size (32 -> 16 -> 8 -> 4).
        stages += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out),
                   nn.ReLU(inplace=True)]
        channels = out
    return nn.Sequential(*stages, nn.Flatten(), nn.Linear(4 * 4 * 128, LATENT_DIM))


def decoder():
    def up(cin, cout):
        return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)

    return nn.Sequential(
        nn.Linear(LATENT_DIM, 4 * 4 * 128), nn.ReLU(inplace=True), nn.Unflatten(1, (128, 4, 4)),
        up(128, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        up(64, 32), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        up(32, 3), nn.Sigmoid(),
    )


def nt_xent(z):
    """NT-Xent on stacked projections ``[z_1; z_2]`` of shape (2N, D)."""
    z = F.normalize(z.float(), dim=-1)
    n2 = z.shape[0]
    logits = z @ z.T / TEMPERATURE - 1e9 * torch.eye(n2, device=z.device)
    rows = torch.arange(n2, device=z.device)
    targets = torch.where(rows < n2 // 2, rows + n2 // 2, rows - n2 // 2)
    return F.cross_entropy(logits, targets)


def build(paradigm):
    """(model, loss(model, x, y)) for one paradigm."""
    if paradigm == "autoencoder":
        model = nn.Sequential(encoder(), decoder())
        return model, lambda m, x, y: F.l1_loss(m(x).float(), y)
    if paradigm == "classifier":
        model = nn.Sequential(encoder(), nn.Linear(LATENT_DIM, NUM_CLASSES))
        return model, lambda m, x, y: F.cross_entropy(m(x).float(), y)
    model = nn.Sequential(encoder(), nn.Linear(LATENT_DIM, 128, bias=False), nn.BatchNorm1d(128),
                          nn.ReLU(inplace=True), nn.Linear(128, 128))
    # Both views as one 2N batch, as in the Keras twins.
    return model, lambda m, x, y: nt_xent(m(torch.cat([x, y], 0)))


def batches(paradigm, batch_size, device, channels_last):
    generator = torch.Generator().manual_seed(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    data = []
    for _ in range(IN_MEMORY_BATCHES):
        x = torch.rand(batch_size, 3, 32, 32, generator=generator).to(
            device, memory_format=memory_format)
        if paradigm == "autoencoder":
            y = x
        elif paradigm == "classifier":
            y = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator).to(device)
        else:
            y = torch.flip(x, dims=[3]).contiguous(memory_format=memory_format)
        data.append((x, y))
    return data


def benchmark(paradigm, args, device):
    torch.manual_seed(0)
    model, loss_fn = build(paradigm)
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    autocast_dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(
        args.autocast_dtype, torch.float16 if device.type == "cuda" else torch.bfloat16)
    data = batches(paradigm, args.batch_size, device, args.channels_last)
    model.train()
    position = 0

    def run(steps):
        nonlocal position
        loss = None
        for _ in range(steps):
            x, y = data[position % len(data)]
            position += 1
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=args.mixed_precision):
                loss = loss_fn(model, x, y)
            loss.backward()  # (fp16 loss scaling is left out: timing only)
            optimizer.step()
        loss.item()  # synchronise (a no-op wait on CPU)

    run(args.warmup)
    rounds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run(args.steps)
        rounds.append(args.steps * args.batch_size / (time.perf_counter() - start))
    return rounds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paradigms", nargs="+", choices=PARADIGMS, default=list(PARADIGMS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="autocast: float16 on CUDA, bfloat16 on CPU (or --autocast-dtype)")
    parser.add_argument("--autocast-dtype", choices=("float16", "bfloat16"), default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for paradigm in args.paradigms:
        rounds = benchmark(paradigm, args, device)
        print(json.dumps({
            "kind": "measurement", "paradigm": paradigm, "variant": "torch",
            "images_per_s": round(statistics.median(rounds), 1),
            "rounds_images_per_s": [round(v, 1) for v in rounds],
            "steps": args.steps, "repeats": args.repeats, "batch_size": args.batch_size,
            "mixed_precision": args.mixed_precision, "channels_last": args.channels_last,
            "threads": torch.get_num_threads(), "device": device.type,
            "torch": torch.__version__, "load_1m": round(os.getloadavg()[0], 2),
        }), flush=True)


if __name__ == "__main__":
    main()
