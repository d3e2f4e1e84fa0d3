// The Vercel AI SDK (ai + @ai-sdk/azure) and OpenAI's zodResponseFormat against vizlab's built-in
// backend (run from tests/test_js_sdk.py): structured outputs with an image, and a forced tool.
import { createAzure } from "@ai-sdk/azure";
import { generateObject, generateText, tool } from "ai";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const base = process.env.VIZLAB_BACKEND_URL;
const apiKey = process.env.VIZLAB_API_KEY;
const image = process.env.VIZLAB_IMAGE_URL;
const Card = z.object({ text: z.string(), word_count: z.number().int(), kind: z.enum(["text", "shape", "colour"]) });

const openai = new OpenAI({ baseURL: `${base}/openai/v1`, apiKey, maxRetries: 0 });
const parsed = await openai.chat.completions.parse({
  model: "gpt-4o",
  messages: [{ role: "user", content: [{ type: "text", text: "Read the card." }, { type: "image_url", image_url: { url: image, detail: "high" } }] }],
  response_format: zodResponseFormat(Card, "card"),
});

// @ai-sdk/azure posts to {baseURL}/chat/completions?api-version=v1 by default.
const azure = createAzure({ baseURL: `${base}/openai/v1`, apiKey });
const userImage = [{ role: "user", content: [{ type: "text", text: "Read the card." }, { type: "image", image: new URL(image) }] }];
const object = await generateObject({ model: azure.chat("gpt-4o"), schema: Card, messages: userImage, maxRetries: 0 });
const called = await generateText({
  model: azure.chat("gpt-4o"),
  messages: userImage,
  tools: { record_text: tool({ description: "Record the text read", inputSchema: z.object({ text: z.string(), confidence: z.number() }) }) },
  toolChoice: { type: "tool", toolName: "record_text" },
  maxRetries: 0,
});
const responses = await generateObject({ model: azure.responses("gpt-4o"), schema: Card, messages: userImage, maxRetries: 0 });

console.log(JSON.stringify({
  zod: parsed.choices[0].message.parsed,
  object: object.object,
  responses: responses.object,
  tool: called.toolCalls.map((c) => ({ name: c.toolName, input: c.input })),
}));
