// Vercel's AI SDK on its default OpenAI provider (`openai(model)`: the Responses API, stored responses,
// earlier output sent back as item_reference items) against the gateway at argv[2] (its /v1 URL).
// argv[3] picks the scenario: `conversation` (3 turns, the middle one streamed) or `tools` (a tool loop
// with a reasoning aggregator and reasoning summaries). Prints what the client saw as one JSON line.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";

const [baseURL, scenario] = process.argv.slice(2);
const openai = createOpenAI({ baseURL, apiKey: "unused" });

async function conversation() {
  const messages = [];
  const turns = [];
  for (const [index, question] of ["Name a colour.", "Why that one?", "Say it again."].entries()) {
    messages.push({ role: "user", content: question });
    const call = { model: openai("moa-1"), messages };
    let text, response;
    if (index === 1) {
      const result = streamText(call);
      text = await result.text;
      response = await result.response;
    } else {
      ({ text, response } = await generateText(call));
    }
    messages.push(...response.messages);
    turns.push({ text, id: response.id });
  }
  return { turns };
}

async function tools() {
  const calls = [];
  const result = await generateText({
    model: openai("reasoning"),
    prompt: "What is the weather in Paris?",
    tools: {
      get_weather: tool({
        description: "The current weather in a city",
        inputSchema: jsonSchema({
          type: "object",
          properties: { city: { type: "string" } },
          required: ["city"],
          additionalProperties: false,
        }),
        execute: async (input) => {
          calls.push(input);
          return "18 C and rain";
        },
      }),
    },
    stopWhen: stepCountIs(4),
    // forceReasoning: a model id OpenAI does not know is taken for a reasoning model (so summaries are asked)
    providerOptions: { openai: { forceReasoning: true, reasoningSummary: "auto" } },
  });
  return {
    steps: result.steps.map((step) => ({
      finishReason: step.finishReason,
      reasoning: step.reasoningText ?? "",
      toolCalls: step.toolCalls.map((c) => c.toolName),
      text: step.text,
    })),
    calls,
    text: result.text,
  };
}

const scenarios = { conversation, tools };
console.log(JSON.stringify(await scenarios[scenario]()));
