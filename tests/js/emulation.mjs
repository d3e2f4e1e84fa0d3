// The official npm `openai` SDK against vizlab's built-in backend: a structured-output request
// and a Responses API request (with a follow-up by previous_response_id). Run by
// tests/test_js_sdk.py, which starts the backend and passes its URL, key and an image.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.VIZLAB_BASE_URL, apiKey: process.env.VIZLAB_API_KEY, maxRetries: 0 });
const image = process.env.VIZLAB_IMAGE_URL;

const schema = {
  type: "object",
  additionalProperties: false,
  required: ["text", "line_count"],
  properties: { text: { type: "string" }, line_count: { type: "integer" } },
};
const { data: completion, response: raw } = await client.chat.completions
  .create({
    model: "gpt-4o",
    messages: [{ role: "user", content: [
      { type: "text", text: "Read the sign." },
      { type: "image_url", image_url: { url: image, detail: "high" } },
    ] }],
    response_format: { type: "json_schema", json_schema: { name: "sign", strict: true, schema } },
  })
  .withResponse();

const first = await client.responses.create({
  model: "gpt-4o",
  input: [{ role: "user", content: [
    { type: "input_text", text: "What does the sign say?" },
    { type: "input_image", image_url: image, detail: "high" },
  ] }],
});
const follow = await client.responses.create({ model: "gpt-4o", previous_response_id: first.id, input: "Read it again." });

let refused = null;
try {
  await client.chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "x" }],
    response_format: { type: "json_schema", json_schema: { name: "bad", strict: true, schema: { type: "object", properties: {} } } },
  });
} catch (err) {
  refused = { status: err.status, message: err.message };
}

console.log(JSON.stringify({
  structured: JSON.parse(completion.choices[0].message.content),
  emulated: raw.headers.get("x-vizlab-emulated"),
  first: { id: first.id, text: first.output_text, input_tokens: first.usage.input_tokens },
  follow: { text: follow.output_text, previous: follow.previous_response_id, input_tokens: follow.usage.input_tokens },
  refused,
}));
