# ruff: noqa: RUF001 - Chinese text is written with its own (full-width) punctuation
"""Search by meaning, by words, or both; and collections that speak Chinese.

Hand-made pairs (not the sample), on both backend pairs. Where a test relies on one ranking
missing what another finds, it asserts that first, so a change of model shows up as a
failure here rather than as a test that no longer tests anything.
"""

from typing import Any

from fastapi.testclient import TestClient

from common.fusion import RRF_K
from solutions.qa_chatbot.retrieval import LEXICAL_WEIGHT
from solutions.qa_chatbot.tests.fixtures import store
from tests.helpers import snapshot

PLANTS = {
    "Which companion plant keeps aphids away from roses?": "Sow French marigolds "
    "(Tagetes patula) around the bed: their scent drives the aphids off.",
    "How often should I water a cactus?": "Every two to three weeks in summer, hardly at all "
    "in winter; let the soil dry out completely between waterings.",
    "When do I prune an apple tree?": "In late winter, while the tree is dormant, before the "
    "buds break.",
    "How do I get rid of slugs in the vegetable patch?": "Pick them off at dusk, set beer "
    "traps and keep a strip of bare soil around the beds.",
    "Why are the leaves of my tomato plants turning yellow?": "Usually overwatering or a lack "
    "of nitrogen; feed with a balanced fertiliser and let the soil dry a little.",
    "How can I tell when potatoes are ready to dig up?": "When the foliage turns yellow and "
    "dies back; early potatoes when the flowers open.",
}
ROSES = "Which companion plant keeps aphids away from roses?"
CACTUS = "How often should I water a cactus?"
TEA = {
    "绿茶应该用多少度的水冲泡？": "绿茶宜用八十度左右的水，水太烫会把嫩芽泡熟，茶汤发苦。",
    "红茶应该用多少度的水冲泡？": "红茶可以用刚烧开的水，九十五度以上，香气和滋味更容易出来。",
    "茶叶应该怎样保存？": "放在密封、避光、干燥的罐子里，远离有异味的东西，绿茶最好冷藏。",
    "坐高铁可以带多少行李？": "一般每位成人旅客可免费携带二十公斤以内的物品，儿童十公斤。",
    "被蜜蜂蜇了怎么办？": "先用卡片刮出毒刺，再用肥皂水冲洗，冷敷止痛，出现呼吸困难要马上就医。",
    "端午节有哪些习俗？": "吃粽子、赛龙舟、挂艾草和菖蒲，还有给孩子系五彩绳。",
}


def search(client: TestClient, collection: str, query: str, **extra: Any) -> list[dict[str, Any]]:
    response = client.post(
        f"/collections/{collection}/search", json={"query": query, "top_k": 10, **extra}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == extra.get("mode", "hybrid")
    return list(body["results"])


def questions(results: list[dict[str, Any]]) -> list[str]:
    return [hit["question"] for hit in results]


def test_an_exact_term_dense_search_misses_is_found_by_words(qa: TestClient) -> None:
    store(qa, "garden", PLANTS)
    query = "tagetes patula"  # a Latin name only the stored answer holds
    assert questions(search(qa, "garden", query, mode="dense"))[0] != ROSES
    lexical = search(qa, "garden", query, mode="lexical")
    assert questions(lexical) == [ROSES]  # no other pair has either word
    assert lexical[0]["lexical_rank"] == 1 and lexical[0]["dense_rank"] is None
    assert lexical[0]["lexical_score"] > 0 and -1 <= lexical[0]["score"] <= 1
    hybrid = search(qa, "garden", query)
    found = next(hit for hit in hybrid if hit["question"] == ROSES)
    assert found["lexical_rank"] == 1 and found["fused_score"] is not None


def test_a_paraphrase_that_shares_no_word_is_found_by_meaning(qa: TestClient) -> None:
    store(qa, "garden", PLANTS)
    query = "succulent irrigation frequency"  # no word of the cactus pair
    assert CACTUS not in questions(search(qa, "garden", query, mode="lexical"))
    for mode in ["dense", "hybrid"]:
        hits = search(qa, "garden", query, mode=mode)
        assert hits[0]["question"] == CACTUS and hits[0]["dense_rank"] == 1, (mode, hits)
    body = qa.post("/collections/garden/ask", json={"question": query}).json()
    assert body["mode"] == "hybrid" and body["encoder"] == "all-MiniLM-L6-v2"
    assert body["similar"][0]["question"] == CACTUS


def independent_rrf(dense: list[str], lexical: list[str]) -> list[tuple[str, float]]:
    """Reciprocal rank fusion written again from its definition, for comparison."""
    scores = {key: 0.0 for key in dense + lexical}
    for ranking in (dense, lexical):
        for position, key in enumerate(ranking):
            scores[key] += 1 / (RRF_K + position + 1)
    order = sorted(scores, key=lambda k: (-scores[k], dense.index(k) if k in dense else 99))
    return [(key, round(scores[key], 6)) for key in order]


def test_hybrid_rankings_equal_fusions_of_the_two_lists(qa: TestClient) -> None:
    store(qa, "garden", PLANTS)
    for query in ["how do I water tomato plants", "slugs and aphids on roses", "prune"]:
        dense = search(qa, "garden", query, mode="dense")
        lexical = search(qa, "garden", query, mode="lexical")
        rrf = search(qa, "garden", query, fusion="rrf")
        expected = independent_rrf(questions(dense), questions(lexical))
        assert [(h["question"], h["fused_score"]) for h in rrf] == expected[:10], query

        similarity = {h["question"]: h["score"] for h in dense + lexical}
        words = {h["question"]: h["lexical_score"] for h in lexical}
        low, high = min(similarity.values()), max(similarity.values())
        fused = {
            q: (1 - LEXICAL_WEIGHT) * (s - low) / (high - low)
            + LEXICAL_WEIGHT * words.get(q, 0) / max(words.values(), default=1)
            for q, s in similarity.items()
        }
        relative = search(qa, "garden", query)
        assert questions(relative) == sorted(fused, key=lambda q: -fused[q])[:10], query
        for hit in relative:
            assert abs(hit["fused_score"] - fused[hit["question"]]) < 1e-3
            assert hit["dense_rank"] == next(
                (i for i, h in enumerate(dense, start=1) if h["question"] == hit["question"]),
                None,
            )


def test_a_lexical_hit_alone_does_not_answer_against_a_closer_meaning(qa: TestClient) -> None:
    store(qa, "garden", PLANTS)
    body = qa.post(
        "/collections/garden/ask", json={"question": "tagetes patula", "mode": "lexical"}
    ).json()
    assert body["similar"][0]["question"] == ROSES
    assert not body["answered"] and body["reason"] in {"low_score", "ambiguous"}, body
    nothing = qa.post(
        "/collections/garden/ask", json={"question": "kombucha", "mode": "lexical"}
    ).json()
    assert nothing["reason"] == "no_match" and nothing["similar"] == []


def test_chinese_questions_find_their_pairs_on_a_multilingual_collection(
    qa: TestClient,
) -> None:
    created = qa.post(
        "/collections", json={"name": "zh", "options": {"encoder": "multilingual-e5-small"}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["options"] == {"encoder": "multilingual-e5-small"}
    assert created.json()["dim"] == 384
    store(qa, "zh", TEA)
    paraphrases = {
        "泡绿茶时水温多高合适": "绿茶应该用多少度的水冲泡？",
        "冲红茶要用多热的开水": "红茶应该用多少度的水冲泡？",
        "乘坐动车行李限重是多少": "坐高铁可以带多少行李？",
        "被黄蜂或者蜜蜂叮了如何处理": "被蜜蜂蜇了怎么办？",
        "五月初五那天人们都做什么": "端午节有哪些习俗？",
    }
    for asked, stored in paraphrases.items():
        body = qa.post("/collections/zh/ask", json={"question": asked}).json()
        assert body["encoder"] == "multilingual-e5-small"
        assert body["similar"][0]["question"] == stored, (asked, body["similar"][:2])
        dense = search(qa, "zh", asked, mode="dense")
        assert dense[0]["question"] == stored, asked
    lexical = search(qa, "zh", "菖蒲", mode="lexical")  # a word only one answer holds
    assert questions(lexical) == ["端午节有哪些习俗？"]
    english = qa.post("/collections/zh/ask", json={"question": "how should tea be stored?"})
    assert english.json()["similar"][0]["question"] == "茶叶应该怎样保存？"  # across languages
    snapshot(qa)  # the full-text index holds exactly the ready rows
