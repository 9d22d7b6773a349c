"""HTTP endpoints of the retrieval service."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from common.errors import InvalidInput, Utf8BodyRoute
from common.schemas import (
    AnswerRecord,
    AnswersRequest,
    AnswersResponse,
    Health,
    Readiness,
    RetrievalResult,
    RetrievedAnswer,
    RetrieveRequest,
    RetrieveResponse,
)
from retrieval_service.dependencies import RetrieverDep

router = APIRouter(route_class=Utf8BodyRoute)


# Plain `def` endpoints: encoding and search are CPU work, so they run in the threadpool and never
# block the event loop.
@router.post("/v1/retrieve", response_model=RetrieveResponse)
def retrieve(body: RetrieveRequest, retriever: RetrieverDep) -> RetrieveResponse:
    """Encode one question (or a batch) and return the k nearest answers by cosine similarity."""
    questions = body.all_questions()
    embeddings = retriever.encode(questions)  # (n, dim)
    scores, rows = retriever.search(embeddings, body.k)  # (n, k) each
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
        embedding = embeddings[i].tolist() if body.include_embedding else None
        results.append(RetrievalResult(question=question, candidates=candidates, embedding=embedding))
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


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(request: Request):
    """Artifacts are loaded and the model is warmed up."""
    retriever = getattr(request.app.state, "retriever", None)
    if retriever is None:
        return JSONResponse(Readiness(status="loading").model_dump(), status_code=503)
    return Readiness(status="ready", artifact_version=retriever.manifest.artifact_version)
