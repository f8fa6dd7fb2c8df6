#!/usr/bin/env python3
"""What the indexes of `subscriber_utxo` cost a block on SQLite, outside the pool.

    python3 benches/utxo_index_model.py

Builds the table as the migrations do, with 60,000 outputs of 10,000 identities (the
`blocks 10000` benchmark), then times 100 blocks of 200 new outputs each: the multi-row
insert and its commit (WAL, synchronous = NORMAL, a passive checkpoint every 10 blocks, as
the pool does). Each variant replaces the random-key indexes (txid, identity) with other
keys, to see what a schema change would save before writing the migration. The figures are
in BENCHMARKS.md (tenth round). Only the Python standard library is needed.
"""
import os
import random
import sqlite3
import tempfile
import time

TABLE = """create table u(
    id integer primary key autoincrement, chain varchar(255) not null,
    identity_address varchar(255) not null, txid varchar(255) not null, vout integer not null,
    amount bigint not null, height bigint not null, spent_height bigint,
    spent_txid varchar(255), from_pool boolean not null,
    identity_key integer, txid_key bigint)"""
INSERT = """insert into u(chain, identity_address, txid, vout, amount, height, spent_height,
    spent_txid, from_pool, identity_key, txid_key) values (?,?,?,?,?,?,?,?,?,?,?)"""
ALWAYS = ["create index ih on u(chain, height)", "create index isp on u(chain, spent_height)"]
TXID_TEXT = "create unique index ux on u(chain, txid, vout)"
TXID_INT = "create index ux on u(txid_key)"
IDENTITY_TEXT = "create index ii on u(chain, identity_address)"
IDENTITY_INT = "create index ii on u(identity_key)"

IDENTITIES = ["i" + os.urandom(17).hex()[:33] for _ in range(10_000)]


def output(height):
    who = random.randrange(len(IDENTITIES))
    txid = os.urandom(32).hex()
    return ("VRSC", IDENTITIES[who], txid, 0, 150_000_000, height, None, None, 0, who,
            int(txid[:15], 16))


def run(label, indexes, existing=60_000, blocks=100, per_block=200):
    with tempfile.TemporaryDirectory() as d:
        db = sqlite3.connect(os.path.join(d, "model.db"), isolation_level=None)
        db.execute("pragma journal_mode = wal")
        db.execute("pragma synchronous = normal")
        db.execute("pragma wal_autocheckpoint = 0")
        db.execute(TABLE)
        for i in ALWAYS + indexes:
            db.execute(i)
        height = 0
        db.execute("begin")
        for _ in range(existing // 1000):
            height += 1
            db.executemany(INSERT, [output(height) for _ in range(1000)])
        db.execute("commit")
        db.execute("pragma wal_checkpoint(truncate)")
        inserting = committing = 0.0
        for b in range(blocks):
            height += 1
            rows = [output(height) for _ in range(per_block)]
            t0 = time.perf_counter()
            db.execute("begin immediate")
            db.executemany(INSERT, rows)
            t1 = time.perf_counter()
            db.execute("commit")
            t2 = time.perf_counter()
            inserting += t1 - t0
            committing += t2 - t1
            if b % 10 == 0:
                db.execute("pragma wal_checkpoint(passive)")
        db.close()
    ms = 1000 / blocks
    print(f"{label:44s} insert {inserting * ms:5.2f} ms  commit {committing * ms:5.2f} ms")


if __name__ == "__main__":
    run("today: text txid, text identity", [TXID_TEXT, IDENTITY_TEXT])
    run("text txid, integer identity key", [TXID_TEXT, IDENTITY_INT])
    run("integer txid key, text identity", [TXID_INT, IDENTITY_TEXT])
    run("integer txid key, integer identity key", [TXID_INT, IDENTITY_INT])
    run("neither (height and spent indexes only)", [])
