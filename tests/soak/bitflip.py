#!/usr/bin/env python3
"""Bit flips in a stopped store: for each trial, one random bit of the store's files
(sled's log `db` or its page table `snap.*`) is flipped in a copy of a reference data
folder, then the real `passerelle` binary starts on it. Each trial ends one of three ways:
refused (the message must name the damage and `passerelle repair`), started sound (the
flip touched nothing live), or started damaged, which the background store check must
find. `passerelle start --verify-store` judges every trial.

Usage: tests/soak/bitflip.py [TRIALS] [SEED] [SERVICES]   (defaults: 40 1 4000)
Needs a built binary: cargo build (target/debug/passerelle) or PASSERELLE_BIN=…
Prints one line a trial and a JSON summary; exits 1 if any trial started damaged without
the check finding it, or was refused without saying what to do.
"""
import json, os, random, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get('PASSERELLE_BIN', os.path.join(ROOT, 'target', 'debug', 'passerelle'))
TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 40
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 1
SERVICES = int(sys.argv[3]) if len(sys.argv) > 3 else 4000


def cli(data, *args):
    return subprocess.run([BIN, '--data-dir', data, *args], capture_output=True)


def start(data, *extra):
    p = subprocess.Popen([BIN, '--data-dir', data, 'start', '--no-mdns', '--listen',
                          '/ip4/127.0.0.1/tcp/0', *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(300):
        if p.poll() is not None:
            return p, False
        if cli(data, 'status').returncode == 0:
            return p, True
        time.sleep(0.1)
    return p, False


def stop(p):
    if p.poll() is None:
        p.terminate()
        p.wait()


def reference(work):
    ref = os.path.join(work, 'ref')
    cli(ref, 'init', '--org-name', 'Centre Espoir', '--legal-status', 'ngo')
    rows = ['organisation,service,dimension,categorie,region,ville,cout,capacite,places,langues']
    rows += [f'Centre Espoir,Accompagnement {i},économique,job_placement,CM005,Douala,gratuit,'
             f'disponible,{i % 40},fr' for i in range(SERVICES)]
    csv = os.path.join(work, 'services.csv')
    open(csv, 'w').write('\n'.join(rows) + '\n')
    p, ok = start(ref)
    assert ok, 'the reference node did not start'
    assert cli(ref, 'import', 'csv', csv).returncode == 0, 'import failed'
    stop(p)
    config = os.path.join(ref, 'config.toml')
    text = open(config).read().replace('[node]', '[node]\nstore_check_after_seconds = 0', 1)
    open(config, 'w').write(text)
    return ref


def main():
    random.seed(SEED)
    work = tempfile.mkdtemp(prefix='passerelle-bitflip-')
    try:
        ref = reference(work)
        counts, bad = {}, 0
        for trial in range(TRIALS):
            data = os.path.join(work, 't')
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(ref, data)
            store = os.path.join(data, 'store')
            files = [os.path.join(store, 'db')] + [os.path.join(store, f)
                                                   for f in os.listdir(store) if f.startswith('snap.')]
            target = random.choice(files)
            offset = random.randrange(os.path.getsize(target))
            with open(target, 'r+b') as f:
                f.seek(offset)
                byte = f.read(1)
                f.seek(offset)
                f.write(bytes([byte[0] ^ (1 << random.randrange(8))]))
            p, ok = start(data)
            where = f'{os.path.basename(target)}@{offset}'
            if not ok:
                err = p.stderr.read().decode() if p.poll() is not None else 'hung'
                stop(p)
                told = 'damaged' in err and 'passerelle repair' in err
                kind = 'refused, saying what to do' if told else 'REFUSED WITHOUT SAYING WHAT TO DO'
                bad += not told
            else:
                state = None
                for _ in range(600):
                    status = json.loads(cli(data, 'status', '--json').stdout)
                    state = status['store_check']['state']
                    if state in ('sound', 'damaged'):
                        break
                    time.sleep(0.1)
                stop(p)
                v, verified = start(data, '--verify-store')
                stop(v)
                if state == 'damaged' and not verified:
                    kind = 'started, damage found by the check'
                elif state == 'sound' and verified:
                    kind = 'started sound'
                else:
                    kind = f'MISSED: check {state}, verify-store {"ok" if verified else "refused"}'
                    bad += 1
            counts[kind] = counts.get(kind, 0) + 1
            print(f'{trial:3} {where:28} {kind}', flush=True)
        print(json.dumps(counts, ensure_ascii=False))
        return 1 if bad else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
