"""HTTP endpoints of the retrieval service."""

from fastapi import APIRouter

from common.errors import ERROR_RESPONSES, InvalidInput, Utf8BodyRoute
from common.schemas import (
    AnswerRecord,
    AnswersRequest,
    AnswersResponse,
    RetrievalResult,
    RetrievedAnswer,
    RetrieveRequest,
    RetrieveResponse,
    embedding_to_base64,
)
from retrieval_service.dependencies import BatcherDep, RetrieverDep
from retrieval_service.retriever import Query

router = APIRouter(route_class=Utf8BodyRoute, responses=ERROR_RESPONSES)


# Encoding and search are CPU work: the endpoint hands them to the batcher (one worker thread,
# concurrent requests encoded together) and only awaits here, so the event loop never runs them.
@router.post("/v1/retrieve", response_model=RetrieveResponse)
async def retrieve(body: RetrieveRequest, batcher: BatcherDep) -> RetrieveResponse:
    """Encode one question (or a batch) and return the k nearest answers by cosine similarity."""
    questions = body.all_questions()
    hits = await batcher.submit(Query(questions=questions, k=body.k))
    # Everything below comes from the retriever that served the batch, even if a reload swapped it since.
    retriever, embeddings, scores, rows = hits.retriever, hits.embeddings, hits.scores, hits.rows
    store = retriever.store
    results = []
    for i, question in enumerate(questions):
        candidates = [
            RetrievedAnswer(
                id=store.ids[row],
                rank=rank,
                score=float(score),
                text=store.texts[row] if body.include_text else None,
            )
            for rank, (score, row) in enumerate(zip(scores[i], rows[i]), start=1)
            if row >= 0
        ]
        embedding = embedding_b64 = None
        if body.include_embedding and body.embedding_format == "base64":
            embedding_b64 = embedding_to_base64(embeddings[i])
        elif body.include_embedding:
            embedding = embeddings[i].tolist()
        results.append(
            RetrievalResult(question=question, candidates=candidates, embedding=embedding, embedding_b64=embedding_b64)
        )
    return RetrieveResponse(artifact_version=retriever.manifest.artifact_version, results=results)


@router.post("/v1/answers", response_model=AnswersResponse)
def answers(body: AnswersRequest, retriever: RetrieverDep) -> AnswersResponse:
    """Look answers up by id (text and votes)."""
    store = retriever.store
    rows, unknown = store.rows(body.ids)
    if unknown:
        raise InvalidInput(f"unknown answer ids: {', '.join(unknown[:20])}")
    return AnswersResponse(
        artifact_version=retriever.manifest.artifact_version,
        answers=[AnswerRecord(id=store.ids[r], text=store.texts[r], score=store.scores[r]) for r in rows],
    )

