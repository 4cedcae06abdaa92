"""The simulation: the whole loop on the tiny model with a scripted annotator and a real worker."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from feedback.models import Generation, Label, Project, Prompt, Round
from trainer.kto.tiny import mentions_animal
from trainer.models import TrainingRun
from trainer.services import simulation


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_rounds_raise_the_desirable_rate_beyond_chance(real_worker):
    out = StringIO()
    call_command("simulate", "--rounds", "3", "--prompts", "32", "--samples", "4", "--timeout", "300", stdout=out)
    output = out.getvalue()
    project = Project.objects.get(name__startswith="Simulation")
    rounds = list(project.rounds.order_by("number"))
    assert [r.number for r in rounds] == [1, 2, 3], output

    # Every label is the rule's verdict, given by the simulated annotator to a fresh item.
    hits, totals = [], []
    for round_ in rounds:
        labels = Label.objects.filter(generation__round=round_).select_related("generation", "annotator")
        assert {label.annotator.username for label in labels} == {simulation.SIMULATED_ANNOTATOR}
        assert all(label.desirable == mentions_animal(label.generation.text) for label in labels)
        assert labels.count() == round_.generations.count() == 128
        hits.append(sum(label.desirable for label in labels))
        totals.append(labels.count())

    # Round 1 came from the base model; round k+1 from the checkpoint trained on round k's labels.
    runs = list(TrainingRun.objects.filter(project=project).order_by("id"))
    assert len(runs) == 2
    assert set(Generation.objects.filter(round=rounds[0]).values_list("checkpoint_id", flat=True)) == {None}
    for number, run in enumerate(runs, start=1):
        assert run.status == "succeeded", run.error
        assert run.config["rounds"] == [number]
        assert run.start_checkpoint_id == rounds[number - 1].checkpoint_id
        trained_on = {example["generation"] for example in run.examples}
        assert trained_on == set(rounds[number - 1].generations.values_list("pk", flat=True))
        produced = run.checkpoint
        assert produced.parent_id == run.start_checkpoint_id
        next_round = rounds[number]
        assert next_round.checkpoint_id == produced.pk
        assert set(next_round.generations.values_list("checkpoint_id", flat=True)) == {produced.pk}
    project.refresh_from_db()
    assert project.active_checkpoint_id == runs[-1].checkpoint.pk

    # The rate rises by more than chance would give: one-sided two-proportion test, round 1 vs 3.
    p = simulation.one_sided_p_value(hits[0], totals[0], hits[2], totals[2])
    assert hits[2] / totals[2] > hits[0] / totals[0] and p < 0.01, output
    for k, n in zip(hits, totals):
        assert f"{k / n:.1%} ({k}/{n})" in output


@pytest.mark.django_db
def test_a_bad_rule_stops_the_command_with_the_reason():
    with pytest.raises(CommandError, match="must look like package.module:function"):
        call_command("simulate", "--rule", "no_colon")
    with pytest.raises(CommandError, match="cannot import 'no_such_module_xyz'"):
        call_command("simulate", "--rule", "no_such_module_xyz:rule")
    with pytest.raises(CommandError, match="has no function named 'missing'"):
        call_command("simulate", "--rule", "trainer.services.simulation:missing")
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_an_unknown_project_is_named():
    with pytest.raises(CommandError, match="No project named or numbered 'Nope'"):
        call_command("simulate", "--project", "Nope")


@pytest.mark.django_db
def test_the_tiny_project_gets_distinct_corpus_style_prompts():
    project = simulation.create_tiny_project("Sim", prompts=20, samples_per_prompt=3)
    texts = list(project.prompts.values_list("text", flat=True))
    assert len(texts) == len(set(texts)) == 20
    assert (project.base_model, project.samples_per_prompt, project.labels_per_item) == ("tiny", 3, 1)


@pytest.mark.django_db
def test_labelling_a_round_submits_the_rules_verdicts_and_skips_full_items(project, annotator):
    project.labels_per_item = 1
    project.save()
    round_ = Round.objects.create(project=project, number=1)
    prompt = Prompt.objects.create(project=project, text="Tell me about the lake.")
    texts = ["A fox sleeps.", "The lamp was red.", "Two dogs ran.", "We walked home."]
    generations = [Generation.objects.create(prompt=prompt, round=round_, text=text) for text in texts]
    Label.objects.create(generation=generations[3], annotator=annotator, desirable=True)  # already full
    _, sim_annotator = simulation.simulation_users(project)

    outcome = simulation.label_round(round_, sim_annotator, simulation.mentions_animal)

    assert (outcome.items, outcome.desirable, outcome.generated_by) == (3, 2, None)
    assert outcome.rate == pytest.approx(2 / 3)
    mine = dict(Label.objects.filter(annotator=sim_annotator).values_list("generation__text", "desirable"))
    assert mine == {"A fox sleeps.": True, "The lamp was red.": False, "Two dogs ran.": True}


def test_the_one_sided_test_matches_the_normal_tail():
    assert simulation.one_sided_p_value(40, 100, 40, 100) == pytest.approx(0.5)
    # 0.4 -> 0.6 with 100 each: pooled 0.5, z = 0.2 / sqrt(0.25 * 0.02) = 2.828
    assert simulation.one_sided_p_value(40, 100, 60, 100) == pytest.approx(0.002339, abs=1e-5)
    assert simulation.one_sided_p_value(60, 100, 40, 100) == pytest.approx(1 - 0.002339, abs=1e-5)
    assert simulation.one_sided_p_value(0, 0, 5, 10) == 1.0
