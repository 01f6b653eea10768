// budgeteval viewer: overview, problem grid and sample pages of a static site (see budgeteval/viewer/site.py).
// Model output is untrusted: every text goes into the page as a text node (textContent), never as markup.
"use strict";

(function () {
  const state = {
    index: null,
    problems: new Map(),      // key -> payload, the few most recently opened
    waiting: new Map(),       // key -> [resolve, reject] while its script loads
    grid: {task: null, mode: null, groupColumn: "", groupValue: "", outcome: "all", run: 0},
  };
  const KEEP_PROBLEMS = 4;    // payloads can be megabytes each: keep only the last few
  const CIVIDIS = [[0, 32, 77], [65, 77, 107], [124, 123, 120], [188, 175, 111], [255, 234, 70]];

  // --- DOM helpers (text only) --------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function formatBudget(budget) {
    return budget % 1024 === 0 ? `${budget / 1024}k` : String(budget);
  }

  function modeOrder(modes) {
    const order = ["cutoff", "forced", "conditioned"];
    return [...modes].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b));
  }

  function colour(fraction) {
    const x = Math.max(0, Math.min(1, fraction)) * (CIVIDIS.length - 1);
    const i = Math.min(CIVIDIS.length - 2, Math.floor(x));
    const t = x - i;
    const rgb = CIVIDIS[i].map((v, j) => Math.round(v + t * (CIVIDIS[i + 1][j] - v)));
    return {background: `rgb(${rgb.join(",")})`, text: fraction >= 0.6 ? "#000" : "#fff"};
  }

  function app() { return document.getElementById("app"); }

  function show(page, ...children) {
    const main = app();
    main.replaceChildren(...children);
    document.body.dataset.page = page;
    for (const id of ["nav-overview", "nav-grid"]) {
      document.getElementById(id).classList.toggle("current", id === `nav-${page}`);
    }
  }

  // --- data loading -------------------------------------------------------------------------------

  function loadProblem(key) {
    if (state.problems.has(key)) return Promise.resolve(state.problems.get(key));
    const summary = state.index.problems[key];
    if (!summary) return Promise.reject(new Error(`no problem ${key} in this site`));
    return new Promise((resolve, reject) => {
      state.waiting.set(key, [resolve, reject]);
      // A script element, not fetch(): pages opened from file:// may load scripts but not fetch files.
      const script = el("script", {src: summary.file});
      script.addEventListener("error", () => {
        state.waiting.delete(key);
        reject(new Error(`cannot load ${summary.file}`));
      });
      script.addEventListener("load", () => script.remove());
      document.head.appendChild(script);
    });
  }

  function receiveProblem(payload) {
    state.problems.set(payload.key, payload);
    while (state.problems.size > KEEP_PROBLEMS) state.problems.delete(state.problems.keys().next().value);
    const waiting = state.waiting.get(payload.key);
    state.waiting.delete(payload.key);
    if (waiting) waiting[0](payload);
  }

  function receiveIndex(index) {
    if (index.format !== 1) {
      show("error", el("p", {class: "error"}, `This site was written by another budgeteval (index format ${index.format}).`));
      return;
    }
    state.index = index;
    const tasks = Object.keys(index.budgets);
    state.grid.task = tasks[0] || null;
    state.grid.mode = modeOrder(index.modes)[0] || null;
    document.getElementById("run-labels").replaceChildren(
      ...index.runs.map((run, i) => el("span", {class: "run-label"}, i === 0 && index.runs.length > 1 ? `${run.label} (baseline)` : run.label)));
    window.addEventListener("hashchange", route);
    route();
  }

  // --- routing ------------------------------------------------------------------------------------

  function route() {
    const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
    const parts = hash.split("/");
    if (parts[0] === "grid") return renderGrid();
    if (parts[0] === "sample" && parts.length >= 2) {
      return renderSample(Number(parts[1]), parts[2] === undefined ? 0 : Number(parts[2]),
                          parts[3] === undefined ? null : Number(parts[3]), parts[4] || null);
    }
    return renderOverview();
  }

  function sampleHash(key, sampleIdx, budget, mode) {
    return `#sample/${key}/${sampleIdx}/${budget}/${encodeURIComponent(mode)}`;
  }

  // --- overview -----------------------------------------------------------------------------------

  function renderOverview() {
    const index = state.index;
    const parts = [el("h1", {}, "Overview")];
    parts.push(el("p", {class: "note"},
      "Accuracies in percent, ± standard error over problems; tokens counted at each budget; truncated = percent " +
      "of samples not finished within the budget (the numbers of metrics.csv, as budgeteval report prints them)."));
    index.runs.forEach((run, runIndex) => {
      parts.push(el("h2", {}, `Run: ${run.label}`), el("p", {class: "note"}, `model ${run.model} · ${run.path}`));
      for (const table of index.overview[runIndex]) {
        parts.push(el("h3", {}, table.task));
        const head = el("tr", {}, table.header.map((label) => el("th", {}, label)));
        const rows = table.rows.map((row) => el("tr", {},
          el("td", {class: "num"}, row.budget_text), el("td", {}, row.mode),
          row.cells.map((cell) => el("td", {
            class: "num metric", dataset: {
              run: String(runIndex), task: table.task, mode: row.mode, budget: String(row.budget), metric: cell.metric,
              k: cell.k === null ? "" : String(cell.k), value: cell.value === null ? "" : String(cell.value)}
          }, cell.text))));
        parts.push(el("table", {class: "report", dataset: {run: String(runIndex), task: table.task}},
          el("thead", {}, head), el("tbody", {}, rows)));
      }
    });
    if (index.comparison) parts.push(...comparisonSection(index.comparison));
    if (index.figures.length) {
      parts.push(el("h2", {}, "Figures"));
      parts.push(el("div", {class: "figures"}, index.figures.map((figure) =>
        el("figure", {}, el("img", {src: figure.file, alt: `${figure.name} figure`}), el("figcaption", {}, figure.name)))));
    }
    for (const note of index.figure_notes) parts.push(el("p", {class: "note"}, `Figure left out: ${note}`));
    show("overview", ...parts);
    document.body.dataset.ready = "overview";
  }

  function comparisonSection(comparison) {
    const parts = [el("h2", {}, `Comparison with the baseline ${comparison.baseline}`),
      el("p", {class: "note"}, `mean@${comparison.k} and pass@${comparison.k} in percent, (±points) vs the baseline at ` +
        "the same budget; length = mean tokens at the budget, (↓/↑ %) vs the baseline; AES = O1-Pruner's " +
        "Accuracy-Efficiency Score (as budgeteval compare prints them).")];
    const tasks = [...new Set(comparison.table.map((row) => row.task))];
    for (const task of tasks) {
      parts.push(el("h3", {}, task));
      parts.push(el("table", {class: "compare", dataset: {task}},
        el("thead", {}, el("tr", {}, comparison.header.map((label) => el("th", {}, label)))),
        el("tbody", {}, comparison.table.filter((row) => row.task === task).map((row) =>
          el("tr", {}, row.cells.map((cell, i) => el("td", {class: i === 1 || i === 2 ? "" : "num"}, cell)))))));
      parts.push(el("table", {class: "compare-summary", dataset: {task}},
        el("thead", {}, el("tr", {}, comparison.summary_header.map((label) => el("th", {}, label)))),
        el("tbody", {}, comparison.summary.filter((row) => row.task === task).map((row) =>
          el("tr", {}, row.cells.map((cell) => el("td", {}, cell)))))));
    }
    return parts;
  }

  // --- problem grid -------------------------------------------------------------------------------

  const OUTCOMES = {
    all: "all problems",
    always: "correct at every budget",
    never: "never correct",
    flips: "flips: a sample right at a budget, wrong at a larger one",
    cut_thinking: "cut while still thinking",
  };

  function select(id, options, value, onChange) {
    return el("select", {id, onchange: (event) => onChange(event.target.value)},
      options.map(([optionValue, label]) => el("option", {value: optionValue, selected: optionValue === value}, label)));
  }

  function majorityRight(cells, mode, budgetIndex) {
    const cell = cells && cells[mode];
    if (!cell || cell.n[budgetIndex] === null) return null;
    return 2 * cell.c[budgetIndex] >= cell.n[budgetIndex] && cell.c[budgetIndex] > 0;
  }

  function passesFilters(problem, budgets) {
    const grid = state.grid;
    if (problem.task !== grid.task) return false;
    if (grid.groupColumn && String(problem.groups[grid.groupColumn]) !== grid.groupValue) return false;
    if (grid.outcome === "all") return true;
    if (grid.outcome === "base_only" || grid.outcome === "other_only") {
      const other = otherRun();
      return budgets.some((_, i) => {
        const base = majorityRight(problem.runs[0], grid.mode, i);
        const them = majorityRight(problem.runs[other], grid.mode, i);
        if (base === null || them === null) return false;
        return grid.outcome === "base_only" ? base && !them : them && !base;
      });
    }
    const cells = problem.runs[grid.run] && problem.runs[grid.run][grid.mode];
    return Boolean(cells) && cells.flags.includes(grid.outcome);
  }

  function otherRun() {
    return state.grid.run === 0 ? 1 : state.grid.run;
  }

  function renderGrid() {
    const index = state.index, grid = state.grid;
    const tasks = Object.keys(index.budgets);
    const budgets = index.budgets[grid.task] || [];
    const groups = (index.groups[grid.task]) || {};
    if (grid.groupColumn && !(grid.groupColumn in groups)) { grid.groupColumn = ""; grid.groupValue = ""; }
    const several = index.runs.length > 1;
    const outcomes = Object.entries(OUTCOMES);
    if (several) {
      const other = index.runs[otherRun()].label;
      outcomes.push(["base_only", `baseline right, ${other} wrong (majority of samples, at some budget)`],
                    ["other_only", `${other} right, baseline wrong (majority of samples, at some budget)`]);
    }
    const controls = el("div", {class: "controls"},
      el("label", {}, "task ", select("filter-task", tasks.map((t) => [t, t]), grid.task,
        (v) => { grid.task = v; grid.groupColumn = ""; grid.groupValue = ""; renderGrid(); })),
      el("label", {}, "mode ", select("filter-mode", modeOrder(index.modes).map((m) => [m, m]), grid.mode,
        (v) => { grid.mode = v; renderGrid(); })),
      Object.keys(groups).length ? el("label", {}, "group ",
        select("filter-group-column", [["", "(any)"], ...Object.keys(groups).map((g) => [g, g])], grid.groupColumn,
          (v) => { grid.groupColumn = v; grid.groupValue = v ? String(groups[v][0]) : ""; renderGrid(); }),
        grid.groupColumn ? select("filter-group-value", groups[grid.groupColumn].map((v) => [String(v), String(v)]),
          grid.groupValue, (v) => { grid.groupValue = v; renderGrid(); }) : null) : null,
      el("label", {}, "outcome ", select("filter-outcome", outcomes, grid.outcome, (v) => { grid.outcome = v; renderGrid(); })),
      several ? el("label", {}, "of run ", select("filter-run", index.runs.map((r, i) => [String(i), r.label]),
        String(grid.run), (v) => { grid.run = Number(v); renderGrid(); })) : null);

    const taskProblems = index.problems.filter((p) => p.task === grid.task);
    const shown = taskProblems.filter((p) => passesFilters(p, budgets));
    const groupNames = Object.keys(groups);
    const head = el("tr", {}, el("th", {}, "problem"), groupNames.map((g) => el("th", {}, g)),
      budgets.map((b) => index.runs.map((run) => el("th", {class: "num"}, formatBudget(b), several ? el("br") : null,
        several ? el("span", {class: "run-head"}, run.label) : null))));
    const rows = shown.map((problem) => el("tr", {dataset: {key: String(problem.key), problemId: problem.problem_id}},
      el("td", {class: "problem"}, el("a", {href: sampleHash(problem.key, 0, budgets[budgets.length - 1], grid.mode)},
        problem.problem_id), el("span", {class: "title"}, problem.title)),
      groupNames.map((g) => el("td", {}, problem.groups[g] === null ? index.missing_group_value : String(problem.groups[g]))),
      budgets.map((budget, i) => index.runs.map((_, runIndex) => gridCell(problem, runIndex, budget, i)))));
    const legend = el("div", {class: "legend"}, "fraction correct: ",
      [0, 0.25, 0.5, 0.75, 1].map((f) => {
        const c = colour(f);
        return el("span", {class: "swatch", style: null, dataset: {fraction: String(f)}}, `${f * 100}%`);
      }));
    show("grid", el("h1", {}, "Problems × budgets"), controls,
      el("p", {id: "grid-count"}, `${shown.length} of ${taskProblems.length} problems`), legend,
      el("table", {class: "grid", id: "grid-table"}, el("thead", {}, head), el("tbody", {}, rows)));
    for (const swatch of document.querySelectorAll(".legend .swatch")) {
      const c = colour(Number(swatch.dataset.fraction));
      swatch.style.background = c.background;
      swatch.style.color = c.text;
    }
    document.body.dataset.ready = "grid";
  }

  function gridCell(problem, runIndex, budget, budgetIndex) {
    const cells = problem.runs[runIndex] && problem.runs[runIndex][state.grid.mode];
    if (!cells || cells.n[budgetIndex] === null) return el("td", {class: "cell empty"}, "—");
    const correct = cells.c[budgetIndex], total = cells.n[budgetIndex];
    const c = colour(correct / total);
    const td = el("td", {
      class: "cell num", title: `${problem.problem_id} at ${formatBudget(budget)}: ${correct} of ${total} samples correct`,
      dataset: {key: String(problem.key), budget: String(budget), run: String(runIndex), correct: String(correct),
                total: String(total)},
      onclick: () => { location.hash = sampleHash(problem.key, 0, budget, state.grid.mode); },
    }, `${correct}/${total}`);
    td.style.background = c.background;
    td.style.color = c.text;
    return td;
  }

  // --- sample page --------------------------------------------------------------------------------

  function renderSample(key, sampleIdx, budget, mode) {
    const summary = state.index.problems[key];
    if (!summary) { show("sample", el("p", {class: "error"}, `No problem ${key} in this site.`)); return; }
    show("sample", el("p", {id: "loading"}, `Loading ${summary.problem_id}…`));
    loadProblem(key).then((payload) => {
      const budgets = payload.budgets;
      const chosenBudget = budgets.includes(budget) ? budget : budgets[budgets.length - 1];
      const modes = modeOrder(new Set(payload.runs.filter(Boolean).flatMap((run) =>
        run.samples.flatMap((sample) => Object.keys(sample.verdicts)))));
      const chosenMode = modes.includes(mode) ? mode : modes[0];
      drawSample(payload, sampleIdx, chosenBudget, chosenMode, modes);
    }, (error) => show("sample", el("p", {class: "error"}, String(error.message))));
  }

  function drawSample(payload, sampleIdx, budget, mode, modes) {
    const go = (s, b, m) => { location.hash = sampleHash(payload.key, s, b, m); };
    const sampleIds = [...new Set(payload.runs.filter(Boolean).flatMap((run) => run.samples.map((s) => s.sample_idx)))]
      .sort((a, b) => a - b);
    const firstRun = payload.runs.find(Boolean);
    const verdictOf = (s) => {
      const sample = firstRun.samples.find((x) => x.sample_idx === s);
      const v = sample && sample.verdicts[mode] && sample.verdicts[mode][String(budget)];
      return v ? (v.correct ? " ✓" : " ✗") : "";
    };
    const header = el("div", {class: "sample-head"},
      el("h1", {}, el("span", {id: "sample-problem"}, payload.problem_id), ` · ${payload.task}`),
      el("p", {}, el("a", {href: "#grid"}, "← problems"), " · reference: ", el("code", {id: "reference"}, payload.reference),
        Object.entries(payload.groups).map(([g, v]) => ` · ${g}: ${v === null ? state.index.missing_group_value : v}`)),
      el("details", {open: true}, el("summary", {}, "Question"), el("pre", {class: "question", id: "question"}, payload.question)),
      el("div", {class: "controls"},
        el("label", {}, "sample ", select("sample-select", sampleIds.map((s) => [String(s), `${s}${verdictOf(s)}`]),
          String(sampleIdx), (v) => go(Number(v), budget, mode))),
        el("label", {}, "mode ", select("mode-select", modes.map((m) => [m, m]), mode, (v) => go(sampleIdx, budget, v))),
        el("span", {class: "budgets"}, "budget ", payload.budgets.map((b) => el("button", {
          class: b === budget ? "budget current" : "budget", dataset: {budget: String(b)},
          onclick: () => go(sampleIdx, b, mode)}, formatBudget(b))))));
    const columns = el("div", {class: "runs", style: null},
      payload.runs.map((run, runIndex) => run === null
        ? el("section", {class: "run"}, el("h2", {}, state.index.runs[runIndex].label), el("p", {class: "note"}, "This run has no such problem."))
        : runColumn(run, runIndex, sampleIdx, budget, mode, go)));
    columns.classList.add(`runs-${payload.runs.length}`);
    show("sample", header, columns);
    // Bring the chosen budget's cut into view inside each response block.
    for (const marker of document.querySelectorAll("pre.response span.cut.current")) {
      const pre = marker.closest("pre");
      pre.scrollTop = Math.max(0, marker.offsetTop - pre.offsetTop - pre.clientHeight / 2);
    }
    document.body.dataset.ready = `sample:${payload.key}:${sampleIdx}:${budget}:${mode}`;
  }

  function runColumn(run, runIndex, sampleIdx, budget, mode, go) {
    const sample = run.samples.find((s) => s.sample_idx === sampleIdx);
    const section = el("section", {class: "run", dataset: {run: String(runIndex)}}, el("h2", {}, run.label));
    if (!sample) { section.append(el("p", {class: "note"}, `This run has no sample ${sampleIdx}.`)); return section; }
    const scored = Boolean(sample.verdicts[mode]);
    section.append(scored ? verdictTable(run, sample, budget, mode, (b) => go(sampleIdx, b, mode))
                          : el("p", {class: "note"}, `This run was not scored in ${mode} mode.`));
    const prompt = sample.prompt === undefined ? run.prompt : sample.prompt;
    if (mode === "conditioned") {
      const response = sample.conditioned[String(budget)];
      if (!response) { section.append(el("p", {class: "note"}, `No conditioned response at ${formatBudget(budget)}.`)); return section; }
      section.append(el("details", {}, el("summary", {}, "Prompt (naming the budget)"), el("pre", {class: "prompt"}, response.prompt)),
        el("h3", {}, `Response generated for ${formatBudget(budget)} (${response.num_tokens} tokens, ${response.finish_reason})`),
        responseBlock(response.text, {}, response.think_end, null, runIndex));
      return section;
    }
    if (prompt) section.append(el("details", {}, el("summary", {}, "Prompt"), el("pre", {class: "prompt", id: `prompt-${runIndex}`}, prompt)));
    if (sample.text === null) { section.append(el("p", {class: "note"}, "No stored response.")); return section; }
    section.append(el("h3", {}, `Response (${sample.num_tokens} tokens, ${sample.finish_reason}); `,
      el("span", {class: "cut-legend"}, "▏"), "marks where each budget cuts it",
      run.think_end ? [", ", el("mark", {class: "think-end"}, run.think_end), " ends thinking"] : ""));
    section.append(responseBlock(sample.text, sample.cuts, sample.think_end, budget, runIndex));
    if (mode === "forced" && scored) {
      const forced = sample.forced[String(budget)];
      section.append(el("h3", {}, `Forced answer at ${formatBudget(budget)}`));
      if (!forced) section.append(el("p", {class: "note"}, "No stored continuation at this budget."));
      else if (!forced.continued) section.append(el("p", {class: "note", id: `forced-${runIndex}`}, "Finished within the budget: nothing was forced."));
      else section.append(el("div", {class: "forced", id: `forced-${runIndex}`},
        el("p", {}, "forcing string (configured): ", el("code", {class: "force-string"}, forced.force_string)),
        el("p", {}, "appended ids decode to: ", el("code", {class: "force-text"}, forced.force_text)),
        el("p", {}, `continuation (${forced.num_tokens} tokens, ${forced.finish_reason}):`),
        el("pre", {class: "continuation"}, forced.text)));
    }
    return section;
  }

  function verdictTable(run, sample, budget, mode, choose) {
    const verdicts = sample.verdicts[mode] || {};
    // The split and the cut-while-thinking flag are the scores' own (null: scored before they were recorded).
    const thinking = Boolean(run.think_end);
    const known = (value) => value !== null && value !== undefined;
    const header = ["budget", "tokens", "finished", ...(thinking ? ["thinking / answer", "cut while thinking"] : []),
      "extracted", "verdict"];
    if (run.answer_source) header.push("answer source");
    if (run.code) header.push("test verdict");
    const rows = Object.keys(verdicts).map(Number).sort((a, b) => a - b).map((b) => {
      const v = verdicts[String(b)];
      const split = known(v.thinking_tokens) && known(v.answer_tokens) ? `${v.thinking_tokens} / ${v.answer_tokens}` : "n/a";
      const cutThinking = known(v.cut_thinking) ? (v.cut_thinking ? "yes" : "no") : "n/a";
      const cells = [formatBudget(b), String(v.num_tokens), v.finished == null ? "unknown" : (v.finished ? "yes" : "no"),
        ...(thinking ? [split, cutThinking] : []),
        v.extracted === null ? "—" : v.extracted, v.correct ? "✓ correct" : (v.timed_out ? "✗ timed out" : "✗ wrong")];
      if (run.answer_source) cells.push(v.answer_source === null || v.answer_source === undefined ? "—" : v.answer_source);
      if (run.code) cells.push(v.test_verdict || "—");
      return el("tr", {class: [b === budget ? "current" : "", v.correct ? "right" : "wrong"].join(" "),
        dataset: {budget: String(b)}, onclick: () => choose(b)},
        cells.map((cell, i) => el("td", {class: header[i] === "extracted" ? "extracted" : (header[i] === "verdict" ? "verdict" : "")}, cell)));
    });
    return el("table", {class: "verdicts"}, el("thead", {}, el("tr", {}, header.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows));
  }

  // The response as text nodes, with an empty marker element at every cut offset (its label is CSS,
  // so the element's textContent stays the response text) and the end-of-thinking markers in <mark>.
  function responseBlock(text, cuts, thinkEnd, budget, runIndex) {
    const pre = el("pre", {class: "response", id: `response-${runIndex}`});
    const cutAt = new Map();
    for (const [b, offset] of Object.entries(cuts)) {
      if (!cutAt.has(offset)) cutAt.set(offset, []);
      cutAt.get(offset).push(Number(b));
    }
    const boundaries = new Set([0, text.length, ...cutAt.keys()]);
    for (const [start, end] of thinkEnd) { boundaries.add(start); boundaries.add(end); }
    const points = [...boundaries].sort((a, b) => a - b);
    const chosenCut = budget !== null && String(budget) in cuts ? cuts[String(budget)] : null;
    for (let i = 0; i < points.length; i++) {
      const at = points[i];
      for (const b of (cutAt.get(at) || []).sort((x, y) => x - y)) {
        pre.append(el("span", {class: b === budget ? "cut current" : "cut", title: `the ${formatBudget(b)} budget cuts here`,
          dataset: {budget: String(b), label: formatBudget(b), offset: String(at)}}));
      }
      if (i + 1 >= points.length) break;
      const piece = text.slice(at, points[i + 1]);
      const inMarker = thinkEnd.some(([start, end]) => at >= start && points[i + 1] <= end);
      const beyond = chosenCut !== null && at >= chosenCut;
      const node = inMarker ? el("mark", {class: "think-end"}, piece) : (beyond ? el("span", {}, piece) : document.createTextNode(piece));
      if (beyond) node.classList.add("beyond");
      pre.append(node);
    }
    return pre;
  }

  window.budgeteval = {index: receiveIndex, problem: receiveProblem};
})();
