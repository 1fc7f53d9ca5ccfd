#!/usr/bin/env python3
"""The parts of `FLOOR=1 bench/search.sh` (the floor of PostgreSQL alone under the cold searches).

  search-floor.py texts KIND < TEXTS        the percent-encoded cold texts of KIND (one a line) as
                                            tab-separated rows: kind, number, the words assetd binds,
                                            and its LIKE pattern (`\\ % _` escaped)
  search-floor.py scripts DIR < LOG         from PostgreSQL's log of one cold `ch_fo` and one cold
                                            `Trip to garden` (log_min_duration_statement = 0), each
                                            kind's walk and gather, each after its plan's SETs in one
                                            pipeline as assetd sends them: DIR/cold-KIND.pgb, a pgbench
                                            script taking a random text of the kind from bench_floor_text
  search-floor.py latencies DIR KIND CLIENTS SECONDS
                                            p50/p99 of pgbench --log's files in DIR; with 2 clients also
                                            8 clients queuing first come first served for 2 slots (the
                                            search gate at ASSETD_DATABASE_SEARCHES=2), simulated with
                                            service times drawn from those 2 clients' times
"""
import csv, glob, heapq, random, re, sys, urllib.parse

def texts(kind):
    out = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    for number, line in enumerate(sys.stdin, 1):
        text = urllib.parse.unquote_plus(line.strip())
        # SearchText.words: letters and digits; LIKE's escapes as TextConditions.likeEscaped.
        words = " ".join(word for word in re.split(r"[\W_]+", text) if word)
        pattern = "".join("\\" + c if c in "\\%_" else c for c in text)
        out.writerow([kind, number, words, pattern])

def scripts(directory):
    log = sys.stdin.read()
    # "execute sN: SQL" then "... DETAIL:  parameters: $1 = '...', ..." lines.
    found = re.findall(r"execute s\d+: (.*?)\n[^\n]*? DETAIL:  parameters: ([^\n]*)", log, re.S)
    for kind, words, pattern in (("substring", "ch fo", "ch\\_fo"), ("title", "Trip to garden", "Trip to garden")):
        steps = [(sql, params) for sql, params in found if f"= '{words}'" in params]
        walk = [step for step in steps if step[0].startswith("WITH walked")]
        gather = [step for step in steps if step[0].startswith("WITH tier")]
        if not walk or not gather:
            sys.exit(f"no walk or gather of {words!r} in the log")
        with open(f"{directory}/texts.tsv") as rows:
            count = sum(1 for row in csv.reader(rows, delimiter="\t") if row[0] == kind)
        script = [rf"\set i random(1, {count})",
                  f"SELECT words, pattern FROM bench_floor_text WHERE kind = '{kind}' AND i = :i \\gset"]
        for sql, params in (walk[-1], gather[-1]):
            values = dict(re.findall(r"\$(\d+) = '((?:[^']|'')*)'", params))
            def value(match):
                number, bound = match.group(1), values[match.group(1)]
                if number == "1":
                    return "1"  # the workspace
                if bound == words:
                    return ":words"
                if bound == pattern:
                    return ":pattern"
                return bound  # a limit
            bitmap = sql.startswith("WITH tier")
            script += [r"\startpipeline",
                       f"SET enable_bitmapscan = {'on' if bitmap else 'off'};",
                       f"SET enable_sort = {'on' if bitmap else 'off'};",
                       f"SET enable_indexscan = {'off' if bitmap else 'on'};",
                       " ".join(re.sub(r"\$(\d+)", value, sql).split()) + ";",
                       r"\endpipeline"]
        with open(f"{directory}/cold-{kind}.pgb", "w") as out:
            out.write("\n".join(script) + "\n")

def latencies(directory, kind, clients, seconds):
    times = sorted(int(line.split()[2]) / 1000 for name in glob.glob(directory + "/pgbench_log.*") for line in open(name))
    n = len(times)
    line = "%-10s %4s %8.0f %8.2f %8.2f" % (kind, clients, n / float(seconds), times[n // 2], times[int(n * .99)])
    if clients == "2":
        random.seed(1)
        slots, waiting, answered = [0.0, 0.0], [(0.0, client) for client in range(8)], []
        for _ in range(100_000):
            arrived, client = heapq.heappop(waiting)
            done = max(heapq.heappop(slots), arrived) + random.choice(times)
            heapq.heappush(slots, done)
            heapq.heappush(waiting, (done, client))
            answered.append(done - arrived)
        answered.sort()
        line += "   %.2f %.2f" % (answered[len(answered) // 2], answered[int(len(answered) * .99)])
    print(line)

if __name__ == "__main__":
    {"texts": lambda: texts(sys.argv[2]), "scripts": lambda: scripts(sys.argv[2]),
     "latencies": lambda: latencies(*sys.argv[2:6])}.get(sys.argv[1] if len(sys.argv) > 1 else "", lambda: sys.exit(__doc__))()
