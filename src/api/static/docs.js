// SPDX-License-Identifier: Apache-2.0
// The /docs page: reads /openapi.json and renders each operation with a
// form whose fields start at the document's examples, sends the request
// with fetch() and shows the status and body. Nothing is loaded from
// another origin.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Resolves a local "#/components/..." reference.
function resolve(doc, item) {
  if (!item || !item.$ref) return item;
  return item.$ref.slice(2).split("/").reduce((obj, key) => obj[key], doc);
}

function renderOperation(doc, path, method, op) {
  const fields = [];
  const form = el("form", { class: "try" });
  for (const param of op.parameters || []) {
    const p = resolve(doc, param);
    const schema = p.schema || {};
    let input;
    if (schema.enum) {
      input = el("select", { name: p.name });
      input.append(el("option", { value: "" }, "(none)"));
      for (const choice of schema.enum) input.append(el("option", { value: choice }, choice));
      if (p.example !== undefined) input.value = String(p.example);
    } else {
      input = el("input", { name: p.name, placeholder: schema.format || schema.type || "" });
      if (p.example !== undefined) input.value = String(p.example);
    }
    fields.push({ param: p, input });
    form.append(el("label", {}, `${p.name} (${p.in}${p.required ? ", required" : ""}) `, input,
                   el("small", {}, " " + (p.description || ""))));
  }
  let bodyInput = null;
  const media = op.requestBody && op.requestBody.content &&
                op.requestBody.content["application/json"];
  if (media) {
    bodyInput = el("textarea", { rows: 8, cols: 80, name: "body" });
    bodyInput.value = JSON.stringify(media.example !== undefined ? media.example : {}, null, 2);
    form.append(el("label", {}, "JSON body", bodyInput));
  }
  const output = el("pre", { class: "output" });
  const send = el("button", { type: "submit" }, `Send ${method.toUpperCase()}`);
  form.append(send, output);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const { param, input } of fields) {
      if (input.value === "") continue;
      if (param.in === "path") url = url.replace(`{${param.name}}`, encodeURIComponent(input.value));
      else if (param.in === "query") query.set(param.name, input.value);
    }
    if (query.toString()) url += "?" + query.toString();
    const headers = {};
    const token = document.getElementById("token").value;
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method: method.toUpperCase(), headers };
    if (bodyInput) {
      headers["Content-Type"] = "application/json";
      init.body = bodyInput.value;
    }
    output.textContent = `${init.method} ${url} …`;
    try {
      const resp = await fetch(url, init);
      let text = await resp.text();
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
      output.textContent = `${init.method} ${url}\nHTTP ${resp.status}\n\n${text}`;
    } catch (err) {
      output.textContent = `${init.method} ${url}\nfailed: ${err}`;
    }
  });
  const responses = Object.entries(op.responses || {}).map(([code, r]) =>
    `${code}: ${resolve(doc, r).description}`).join("; ");
  return el("details", { class: "operation", id: `${method}-${path}` },
            el("summary", {}, el("b", {}, method.toUpperCase()), " ", el("code", {}, path), " ",
               op.summary || ""),
            el("p", {}, el("small", {}, "Responses: " + responses)),
            form);
}

async function main() {
  const intro = document.getElementById("intro");
  const resp = await fetch("/openapi.json");
  const doc = await resp.json();
  intro.textContent = `${doc.info.title} ${doc.info.version}. ${doc.info.description}`;
  const main = document.getElementById("endpoints");
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      main.append(renderOperation(doc, path, method, op));
    }
  }
}

main().catch((err) => {
  document.getElementById("intro").textContent = "Could not load /openapi.json: " + err;
});
