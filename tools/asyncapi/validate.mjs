// Validates an AsyncAPI document with the AsyncAPI project's parser: prints every diagnostic,
// exits 1 on any error (warnings are printed, and fail too when --strict is given).
import { readFileSync } from "node:fs";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const [path, flag] = process.argv.slice(2);
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: path });
let failed = !document;
for (const d of diagnostics) {
  const level = d.severity === DiagnosticSeverity.Error ? "error"
    : d.severity === DiagnosticSeverity.Warning ? "warning" : "info";
  if (level === "error" || (level === "warning" && flag === "--strict")) failed = true;
  console.log(`${level} ${d.code} at ${d.path.join(".")}: ${d.message}`);
}
if (document) {
  console.log(`parsed: ${document.channels().length} channels, ${document.operations().length} operations, ${document.messages().length} messages`);
}
process.exit(failed ? 1 : 0);
