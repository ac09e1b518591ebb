import { authorizationTable, type MethodRule } from "./authorization-table.js";
import { roles, type Role } from "./roles.js";

/**
 * The authorization table as the Markdown table of docs/security.md: a row per RPC, a
 * column per role. A test checks that the docs carry exactly this.
 */
export function authorizationMarkdown(): string {
  const header = `| RPC | ${roles.join(" | ")} |\n| --- | ${roles.map(() => ":---:").join(" | ")} |`;
  const rows: string[] = [];
  for (const { service, methods } of authorizationTable.values()) {
    for (const method of service.methods) {
      const rule = methods.get(method.name);
      const cells = roles.map((role) => (rule ? cell(rule, role) : "refused"));
      rows.push(`| \`${service.name}.${method.name}\` | ${cells.join(" | ")} |`);
    }
  }
  return `${header}\n${rows.join("\n")}`;
}

function cell(rule: MethodRule<unknown>, role: Role): string {
  if (rule.allow === "public") return "public";
  if (!rule.allow.includes(role)) return "—";
  if (role === "producer" && (rule.jobs || rule.batches || rule.parentJobs || rule.ownOnly)) return "own";
  if (role === "worker" && (rule.workerQueues || rule.workerJobs)) return "its queues";
  return "yes";
}
