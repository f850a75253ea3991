// Parse Mermaid text from stdin with mermaid's own parser (jsdom gives it the DOM it needs).
import { JSDOM } from "jsdom";
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
let text = "";
for await (const chunk of process.stdin) text += chunk;
try {
  const result = await mermaid.parse(text);
  console.log(JSON.stringify({ ok: true, diagramType: result.diagramType }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err.message || err) }));
  process.exit(1);
}
