// wasmhooks console: small enhancements over server-rendered pages.
// Every page works by keyboard; nothing is loaded from other hosts.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms that ask before they act.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // Copy buttons: data-copy names the input whose value is copied.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
      } catch {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
    });
  });

  // Search boxes: data-filter names the list whose data-filter-item
  // entries are shown only when they contain the search text.
  document.querySelectorAll("input[data-filter]").forEach((input) => {
    const list = document.getElementById(input.dataset.filter);
    input.addEventListener("input", () => {
      const text = input.value.trim().toLowerCase();
      list.querySelectorAll("[data-filter-item]").forEach((item) => {
        item.hidden = text !== "" && !item.dataset.filterItem.toLowerCase().includes(text);
      });
    });
  });

  hookForm();
  snippetErrors();
  pluginUpload();
  document.querySelector(".error-summary")?.focus();
});

// The hook form: webhook or sync fields, and the steps editor.
function hookForm() {
  const form = document.querySelector("form.hook-form");
  if (!form) return;
  const showKind = () => {
    const kind = form.querySelector("input[data-hook-kind]:checked")?.value;
    form.querySelectorAll("[data-hook]").forEach((section) => {
      section.hidden = section.dataset.hook !== kind;
    });
  };
  form.querySelectorAll("input[data-hook-kind]").forEach((radio) => radio.addEventListener("change", showKind));

  const steps = document.getElementById("steps");
  const renumber = () => {
    steps.querySelectorAll(".step").forEach((step, i) => {
      step.querySelector(".step-number").textContent = i + 1;
      step.querySelectorAll("[id^='step-']").forEach((element) => {
        const rest = element.id.replace(/^step-[^-]+-/, "");
        const label = step.querySelector(`label[for='${element.id}']`);
        element.id = `step-${i}-${rest}`;
        if (label) label.htmlFor = element.id;
      });
    });
  };
  const showStepKind = (step) => {
    const kind = step.querySelector("[data-step-kind]").value;
    step.querySelectorAll("[data-kind]").forEach((part) => {
      part.hidden = part.dataset.kind !== kind;
    });
  };
  form.addEventListener("change", (event) => {
    if (event.target.matches("[data-step-kind]")) showStepKind(event.target.closest(".step"));
  });
  form.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-step]");
    if (!button) return;
    const step = button.closest(".step");
    switch (button.dataset.step) {
      case "add": {
        const copy = document.getElementById("step-template").content.firstElementChild.cloneNode(true);
        steps.appendChild(copy);
        renumber();
        copy.querySelector("select").focus();
        break;
      }
      case "remove":
        step.remove();
        break;
      case "up":
        if (step.previousElementSibling) steps.insertBefore(step, step.previousElementSibling);
        break;
      case "down":
        if (step.nextElementSibling) steps.insertBefore(step.nextElementSibling, step);
        break;
    }
    renumber();
    if (button.isConnected) button.focus();
  });
}

// Put the cursor where a snippet's syntax error is.
function snippetErrors() {
  const editor = document.querySelector("textarea[data-error-line]");
  if (!editor) return;
  const line = Number(editor.dataset.errorLine);
  const column = Number(editor.dataset.errorColumn || 1);
  const lines = editor.value.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, column - 1);
  editor.focus();
  editor.setSelectionRange(offset, offset);
}

// Plugin upload: the chosen or dropped file's bytes go to the server as
// the body; a refusal is shown beside the form.
function pluginUpload() {
  const form = document.getElementById("upload");
  if (!form) return;
  const file = document.getElementById("plugin-file");
  const name = document.getElementById("plugin-name");
  const status = document.getElementById("upload-status");
  const drop = form.querySelector("[data-drop]");
  const chosen = () => {
    const picked = file.files[0];
    if (picked && !name.value) name.value = picked.name.replace(/\.wasm$/, "");
  };
  file.addEventListener("change", chosen);
  ["dragenter", "dragover"].forEach((type) =>
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    }),
  );
  ["dragleave", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    file.files = event.dataTransfer.files;
    chosen();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = file.files[0];
    if (!picked || !name.value) {
      status.textContent = "Choose a component file and give it a name.";
      return;
    }
    status.textContent = "Uploading and validating…";
    const response = await fetch(`/console/plugins?name=${encodeURIComponent(name.value)}`, {
      method: "POST",
      headers: { "content-type": "application/wasm", "x-csrf-token": form.dataset.csrf },
      body: picked,
    });
    if (response.ok && response.redirected) {
      window.location.assign(response.url);
    } else {
      status.textContent = await response.text();
    }
  });
}
