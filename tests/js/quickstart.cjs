// The JavaScript "Quickstart: Use images in your AI chats" (Azure OpenAI, 2025-02-21, API-key tab),
// fixed so it runs, and run by tests/test_js_quickstart.py against vizlab's built-in backend.
//
// What was wrong in the seed, as printed:
//  * `export async function main()` in a file that loads the SDK with require(): a CommonJS file
//    cannot export with `export`, so node stops with "SyntaxError: Unexpected token 'export'"
//    before anything runs. Here main() is a plain function.
//  * The Entra ID tab also declares `function getClient(): AzureOpenAI` in a .js file: a
//    TypeScript return type, another SyntaxError in JavaScript. (The TypeScript tab is the
//    place for it.)
// Kept from the seed: the AzureOpenAI client with endpoint, apiKey, apiVersion and deployment;
// the message list with a text part and an image_url part; max_tokens.
// Added: the v1 endpoint with the plain OpenAI client (the route Microsoft now recommends, no
// api-version), and one JSON line per answer so the test can check what came back.
const { AzureOpenAI, OpenAI } = require("openai");

const endpoint = process.env.AZURE_OPENAI_ENDPOINT || "Your endpoint";
const apiKey = process.env.AZURE_OPENAI_API_KEY || "Your API key";
const imageUrl = process.env.IMAGE_URL || "<image url>";
const apiVersion = process.env.OPENAI_API_VERSION || "2024-10-21";
const deploymentName = process.env.AZURE_OPENAI_DEPLOYMENT_NAME || "gpt-4o";

function createMessages() {
  return {
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      {
        role: "user",
        content: [
          { type: "text", text: "Describe this picture:" },
          { type: "image_url", image_url: { url: imageUrl } },
        ],
      },
    ],
    model: deploymentName, // the dated route takes the deployment from the client; v1 needs it here
    max_tokens: 2000,
  };
}

function report(route, completion) {
  for (const choice of completion.choices) {
    console.log(JSON.stringify({
      route,
      finish_reason: choice.finish_reason,
      content: choice.message.content,
      prompt_tokens: completion.usage.prompt_tokens,
    }));
  }
}

async function main() {
  const dated = new AzureOpenAI({ endpoint, apiKey, apiVersion, deployment: deploymentName });
  report("azure", await dated.chat.completions.create(createMessages()));

  const v1 = new OpenAI({ baseURL: `${endpoint.replace(/\/+$/, "")}/openai/v1/`, apiKey });
  report("v1", await v1.chat.completions.create(createMessages()));
}

main().catch((err) => {
  console.error("Error occurred:", err);
  process.exitCode = 1;
});
