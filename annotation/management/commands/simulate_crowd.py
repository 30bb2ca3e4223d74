import json
import threading

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from annotation.models import Campaign
from annotation.selectors.demo import DemoTruthMissing
from annotation.services import demo
from annotation.simulator.workers import DEFAULT_MIX, parse_mix

LOG_EVERY = 10  # HITs between the paced crowd's log lines


class Command(BaseCommand):
    help = (
        "Run a simulated crowd on a campaign of demo images through the real REST API (over HTTP, against "
        "--base-url or a server started in this process) and report, from the demo ground truth: precision "
        "and recall of accepted labels per synset and overall, votes per accepted image, cost, simulated "
        "worker-hours, throughput, spammers blocked and after how many HITs, honest workers blocked."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, required=True, help="a running campaign over demo synsets")
        parser.add_argument("--workers", type=int, default=200)
        parser.add_argument("--mix", default=DEFAULT_MIX,
                            help="kind:share,… of reliable, noisy, lazy, spammer (= random, always_yes, always_no, "
                                 "copycat in equal parts, or each by name), adversarial")  # fmt: skip
        parser.add_argument("--seed", type=int, default=1)
        budget = parser.add_mutually_exclusive_group()
        budget.add_argument("--hits", type=int, help="stop after this many HITs")
        budget.add_argument("--until-done", action="store_true", help="run until no worker gets work (default)")
        parser.add_argument("--concurrency", type=int, default=16, help="simultaneous HTTP clients")
        parser.add_argument("--base-url", help="a running Synsight (default: serve one in this process)")
        parser.add_argument("--policy", help="set the campaign's voting policy first: adaptive or fixed:K")
        parser.add_argument("--compare", metavar="POLICIES",
                            help="run the same seeded crowd under each policy in turn (e.g. adaptive,fixed:5) on a "
                                 "campaign without HITs, undoing the simulation between runs; prints both reports "
                                 "and the vote ratio")  # fmt: skip
        parser.add_argument("--slow", action="store_true", help="pace workers in real time, like real people")
        parser.add_argument("--pace", type=float, default=None, help="real seconds per simulated second")
        parser.add_argument("--arrivals-over", type=float, default=3600.0, metavar="SECONDS",
                            help="workers arrive uniformly over this many simulated seconds (an hour)")  # fmt: skip
        parser.add_argument("--spammers-first", action="store_true",
                            help="spammers and adversarial workers arrive in the first simulated minutes and "
                                 "work until blocked or out of work (no appetite limit): measures the spam "
                                 "screen")  # fmt: skip
        parser.add_argument("--prefix", default="", help="username prefix of the simulated accounts")
        parser.add_argument("--repeatable", action="store_true",
                            help="one client, Celery tasks in-process, the scheduler's synset counts read on every "
                                 "lease: the same --seed on a fresh database (same ids) gives the same report; "
                                 "needs the server this command starts (no --base-url)")  # fmt: skip
        parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
        parser.add_argument("--boxes", action="store_true",
                            help="simulate the box pipeline (draw, quality, coverage) on the campaign's accepted "
                                 "candidates instead of presence votes; report against the demo boxes")  # fmt: skip
        parser.add_argument("--accept-truth", action="store_true",
                            help="with --boxes: first accept the demo candidates that truly show their "
                                 "synset")  # fmt: skip

    def handle(self, *args, **o):
        campaign = Campaign.objects.filter(id=o["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {o['campaign']}.")
        try:
            parse_mix(o["mix"])
            policy = demo.policy_parse(o["policy"]) if o["policy"] else None
            names = [n.strip() for n in (o["compare"] or "").split(",") if n.strip()]
            compared = [demo.policy_parse(n) for n in names]
        except ValueError as error:
            raise CommandError(str(error)) from None
        if o["compare"] and (len(names) < 2 or o["policy"]):
            raise CommandError("--compare takes two or more policies (adaptive,fixed:5) and replaces --policy.")
        if campaign.state != Campaign.State.RUNNING:
            raise CommandError(f"Campaign {campaign.id} is {campaign.state}; start it first.")
        if policy:
            campaign = demo.campaign_policy_set(campaign=campaign, policy=policy)
        if o["boxes"]:
            from annotation.management.box_simulation import simulate_boxes

            return simulate_boxes(self, campaign, o)
        pace = o["pace"] if o["pace"] is not None else (1.0 if o["slow"] else 0.0)
        if o["repeatable"]:
            if o["base_url"] or pace > 0:
                raise CommandError(
                    "--repeatable needs the server this command starts, unpaced (no --base-url, --slow or --pace)."
                )
            demo.simulation_repeatable()
            o["concurrency"] = 1
        if not o["arrivals_over"] > 0:
            raise CommandError("--arrivals-over takes a positive number of seconds.")
        options = demo.SimulationOptions(
            workers=o["workers"], mix=o["mix"], seed=o["seed"], max_hits=o["hits"], concurrency=o["concurrency"],
            pace=pace, prefix=o["prefix"], spammers_first=o["spammers_first"], arrivals_seconds=o["arrivals_over"],
        )  # fmt: skip
        bar = tqdm(unit="HIT", total=o["hits"], disable=o["json"] or pace > 0, file=self.stderr)
        stop = threading.Event()
        try:
            run = {
                "options": options,
                "base_url": o["base_url"],
                "progress": self._progress(bar, paced=pace > 0 and not o["json"]),
                "stop": stop,
            }
            if names:
                report = demo.simulate_compare(campaign=campaign, policies=compared, names=names, **run)
            else:
                report = demo.simulate(campaign=campaign, **run)
        except (DemoTruthMissing, ValueError) as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            stop.set()
            raise
        finally:
            bar.close()
        if o["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        elif names:
            for name in names:
                self.stdout.write(format_report(report["policies"][name]) + "\n")
            ratios = ", ".join(f"{n} {100 * (r or 0):.1f}%" for n, r in report["votes_ratio"].items())
            self.stdout.write(f"votes relative to {names[0]}: {ratios}")
        else:
            self.stdout.write(format_report(report))

    def _progress(self, bar, *, paced: bool):
        """A bar when the crowd runs flat out; at a human pace (the demo's background crowd, whose output goes to
        a log file) a flushed line every LOG_EVERY HITs instead, so that the log shows the crowd at work."""
        if not paced:
            return lambda done: bar.update(1)

        def line(done: int) -> None:
            if done % LOG_EVERY == 0:
                self.stderr.write(f"{timezone.localtime():%H:%M:%S} {done} HITs submitted")
                self.stderr.flush()

        return line


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def format_report(r: dict) -> str:
    o = r["overall"]
    lines = [
        f"Campaign {r['campaign']}, policy {r['policy']} ({r['settings']})",
        "",
        f"{'synset':<12}{'cands':>7}{'accepted':>10}{'rejected':>10}{'unres.':>8}{'open':>6}"
        f"{'precision':>11}{'recall':>9}{'votes/cand':>12}",
    ]
    for wnid, s in [*r["synsets"].items(), ("overall", o)]:
        lines.append(
            f"{wnid:<12}{s['candidates']:>7}{s['accepted']:>10}{s['rejected']:>10}{s['unresolved']:>8}{s['open']:>6}"
            f"{_pct(s['precision']):>11}{_pct(s['recall']):>9}{s['votes_per_candidate'] or 0:>12.2f}"
        )
    lines += [
        "",
        f"votes {o['votes']} ({o['votes_per_accepted_image'] or 0:.2f} per accepted image), HITs {r['hits']}, "
        f"gold answers {r['gold_answers']}, cost {r['cost']}",
    ]
    if "spammers" in r:
        s, h, t = r["spammers"], r["honest"], r["throughput"]
        lines += [
            f"simulated worker-hours {r['simulated_worker_hours']}, simulated time {r['simulated_hours_elapsed']} h, "
            f"wall {r['wall_seconds']} s",
            f"throughput {t['hits_per_wall_minute']} HITs/min, {t['labels_per_wall_minute']} labels/min (wall); "
            f"{t['labels_per_simulated_hour']} labels per simulated hour",
            f"spammers {s['total']}: {s['failed_quiz']} failed the quiz, {s['blocked']} blocked after a median of "
            f"{s['median_hits_before_block']} HITs (max {s['max_hits_before_block']}); not stopped: "
            f"{len(s['not_stopped'])}; HITs they got paid for: {s['hits_by_spammers']}",
            f"honest workers {h['total']}: {h['failed_quiz']} failed the quiz, {len(h['false_blocks'])} blocked",
            "  spammers blocked by kind (HITs before the block): "
            + "; ".join(
                f"{kind} {k['blocked']}/{k['passed_quiz']} {k['blocked_after_hits']}"
                for kind, k in s["by_kind"].items()
            ),
            f"  honest workers by true accuracy (lower of sensitivity, specificity): [workers, blocked] "
            f"{h['by_true_accuracy']}",
        ]
        lines += [
            f"  blocked honest worker: true sensitivity {b['true_sensitivity']}, specificity {b['true_specificity']} "
            f"after {b['hits']} HITs ({b['reason']})"
            for b in h["blocked_detail"]
        ]
        if r["errors"]:
            lines.append(f"errors: {r['errors'][:3]}")
    return "\n".join(lines)
