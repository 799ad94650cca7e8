"""LlamaIndex's `OpenAIResponses.structured_predict` against the gateway at argv[1] (its /v1 URL), with
the pipeline argv[2]: prints the parsed object as JSON. Run by test_llamaindex.py with the Python of
tests/e2e/clients/.venv, where LlamaIndex is installed (its OpenAI LLM pins openai<3)."""

from __future__ import annotations

import sys

from llama_index.core.prompts import PromptTemplate
from llama_index.llms.openai import OpenAIResponses
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    llm = OpenAIResponses(model=model, api_base=base_url, api_key="unused", max_retries=0)
    city = llm.structured_predict(City, PromptTemplate("Name a city in {country}."), country="France")
    print(city.model_dump_json())


if __name__ == "__main__":
    main()
