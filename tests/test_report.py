"""report.html: what it shows, what it says when a log lacks something, the folders it refuses, and
(in headless Chromium) that an `ami-robot eval` run's page renders its table, charts and a video."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from ami_robot.report import ReportError, build_report, main, write_report
from ami_robot.video import compose, video_name, write_video
from tests.apps.conftest import FAST, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _log(folder, records, header=True) -> None:
    lines = [{"header": True, "fingerprint": "x", "config": {"seeds": [10000, 10001]}}] if header else []
    (folder / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines + records))


def _episode(seed, success, **extra):
    return {"task": "Reach", "method": "latent_cem", "seed": seed, "success": success,
            "final_distance": 0.02 if success else 0.2, "steps": 30, **extra}


def _video(folder, record) -> None:
    frames = [compose([("exterior", np.full((64, 64, 3), 40 * k, np.uint8))], f"step {k}") for k in range(3)]
    write_video(folder / "videos" / video_name(record["task"], record["method"], record["seed"]), frames)


def test_report_shows_table_charts_episodes_and_videos(tmp_path) -> None:
    records = [_episode(10000, True, plan_seconds=[0.1, 0.2], energies=[0.5, 0.3]),
               _episode(10001, False, plan_seconds=[0.2, 0.3], energies=[0.6, 0.6])]
    _log(tmp_path, records)
    _video(tmp_path, records[0])
    page = write_report(tmp_path).read_text()
    assert "1/2 (50%)" in page and "9&ndash;91%" in page  # Wilson 95% of 1 of 2
    assert page.count('src="data:image/png;base64,') == 3  # success, planning time, energy
    assert page.count("<video") == 1  # only the success has a video
    assert '<a href="videos/Reach_latent_cem_seed10000.mp4">video</a>' in page
    assert "0.5000 &rarr; 0.3000" in page and "No energies" not in page


def test_an_old_log_still_makes_a_report_that_says_what_it_lacks(tmp_path) -> None:
    _log(tmp_path, [_episode(10000, True), _episode(10001, False)], header=False)  # no summary.json either
    page = build_report(tmp_path)
    assert "1/2 (50%)" in page
    assert "No planning times in this log" in page and "No energies in this log" in page
    assert "run with video=true" in page and "<video" not in page


def test_an_empty_run_and_a_torn_last_line(tmp_path) -> None:
    _log(tmp_path, [])
    assert "No episode has finished yet" in build_report(tmp_path)
    with open(tmp_path / "episodes.jsonl", "a") as f:
        f.write(json.dumps(_episode(10000, True)) + "\n" + '{"task": "Reach", "se')  # killed mid-write
    assert "1/1 (100%)" in build_report(tmp_path)


def test_bad_folders_name_the_file_and_the_fix(tmp_path, capsys) -> None:
    with pytest.raises(ReportError, match="is not a folder; pass the folder `ami-robot eval`"):
        build_report(tmp_path / "nowhere")
    with pytest.raises(ReportError, match="has no episodes.jsonl"):
        build_report(tmp_path)
    (tmp_path / "episodes.jsonl").write_text('{"header": true}\nnot json\n')
    with pytest.raises(ReportError, match=r"episodes.jsonl:2 is not a JSON record; fix or remove that line"):
        build_report(tmp_path)
    (tmp_path / "episodes.jsonl").write_text('{"task": "Reach"}\n')
    with pytest.raises(ReportError, match=r"episodes.jsonl:1 has no seed, success"):
        build_report(tmp_path)
    _log(tmp_path, [_episode(10000, True)])
    (tmp_path / "summary.json").write_text("[1, 2")
    with pytest.raises(ReportError, match="summary.json is not the JSON object eval writes"):
        build_report(tmp_path)
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# Appended to a copy of the report: once every image and video has loaded (or failed), write what
# Chromium actually decoded into the DOM, which --dump-dom then prints.
_PROBE = """<script>
const media = [...document.images, ...document.querySelectorAll("video")];
Promise.all(media.map(m => new Promise(done => {
  if (m.tagName === "IMG" ? m.complete : m.readyState >= 1) return done();
  m.addEventListener(m.tagName === "IMG" ? "load" : "loadedmetadata", done);
  m.addEventListener("error", done);
}))).then(() => {
  const shown = [...document.querySelectorAll("table")].map(t => t.getBoundingClientRect().height);
  document.body.dataset.rendered = JSON.stringify({
    tables: shown.filter(h => h > 0).length,
    images: [...document.images].filter(i => i.naturalWidth > 0).length,
    videos: [...document.querySelectorAll("video")].map(v => [v.videoWidth, v.videoHeight]),
  });
});
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary: `apt-get install chromium` (.ci/run does)")
def test_an_eval_report_renders_in_headless_chromium(tmp_path) -> None:
    run = tmp_path / "eval"
    out = run_cli("eval", *FAST, "tasks=[Reach]", "episodes=1", "video=true", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    page = (run / "report.html").read_text()
    (run / "probe.html").write_text(page.replace("</body>", _PROBE))
    chromium = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
    dom = subprocess.run([*chromium, "--dump-dom", (run / "probe.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-rendered="([^"]*)"', dom.stdout)
    assert found, "the probe did not finish: " + dom.stdout[-2000:]
    rendered = json.loads(found.group(1).replace("&quot;", '"'))
    assert rendered["tables"] == 2  # results and episodes, laid out with a height
    assert rendered["images"] == 3  # success chart, planning-time and energy charts, decoded
    # the episode's video decoded: exterior and goal side by side, 256 px each, under 64 px observations
    assert len(rendered["videos"]) == 1 and rendered["videos"][0][0] >= 2 * 256
