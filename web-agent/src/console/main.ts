//! Entry point of the console page: picks the language and starts the app.

import "./style.css";
import { I18n } from "../shared/i18n";
import { ConsoleApp } from "./app";

const root = document.getElementById("app");
if (root) new ConsoleApp(root, new I18n(ConsoleApp.preferredLocale())).start();
