"""The corpus of public scripts is well formed, and its site mapping does only what it says."""

from __future__ import annotations

import corpus


def test_at_least_120_scripts_each_with_its_source_and_stored_answers():
    scripts = sorted(corpus.SCRIPTS.glob("*.sh"))
    index = (corpus.HERE / "INDEX.md").read_text()
    assert len(scripts) >= 120
    for path in scripts:
        assert path.read_text().splitlines()[1].startswith("# corpus: https://github.com/")
        assert f"`{path.name}`" in index
    for case in corpus.cases():
        assert (corpus.EXPECTED / f"{case.id}.txt").exists(), case.id


def test_sited_maps_site_names_and_keeps_the_rest():
    text = (
        "#!/bin/bash\n"
        "#SBATCH -p Lake-short -A proj --qos=high   # a comment\n"
        "#SBATCH --gres=gpu:a100:4 --gpus-per-task=v100:1 -w node7\n"
        "#SBATCH --array=0-31%4 --mem=4G -c 2\n"
        "echo hi\n"
    )
    assert corpus.sited(text) == (
        "#!/bin/bash\n"
        "#SBATCH --partition=gpu\n"
        "#SBATCH --gres=gpu:4 --gpus-per-task=1\n"
        "#SBATCH --array=0-2%4 --mem=4G -c 2\n"
        "echo hi\n"
    )
    assert corpus.sited("#!/bin/sh\n#SBATCH --gpus=2\n") == (
        "#!/bin/sh\n#SBATCH --partition=gpu\n#SBATCH --gpus=2\n"
    )
    assert corpus.sited("#!/bin/sh\n#SBATCH --partition cpu -n4\n") == (
        "#!/bin/sh\n#SBATCH --partition=debug -n4\n"
    )
    assert corpus.sited("#!/bin/sh\n#SBATCH -p batch -G 1 --array=[0-9]\n") == (
        "#!/bin/sh\n#SBATCH --partition=gpu --gpus=1 '--array=[0-2]'\n"
    )
